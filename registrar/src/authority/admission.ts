/**
 * Admission policy (issue item 2): which authenticated pledges may get a voucher.
 *   accept    — any pledge of a trusted manufacturer;
 *   allowlist — serials or glob patterns from the config plus the admin-edited list;
 *   approve   — allow-listed pledges pass, others wait in a queue (202 + Retry-After) until an
 *               operator approves or denies.
 * Refusals use 404 (RFC 8995 SHOULD) or 403 (admin-fixable) per config.
 */
import { BrskiError } from '@brski/shared/errors';
import type { RegistrarStore } from '../store/types.ts';

export type PolicyMode = 'accept' | 'allowlist' | 'approve';

export interface AdmissionConfig {
  mode: PolicyMode;
  allowlist: readonly string[];
  approvalRetryAfter: number;
  refusalStatus: 403 | 404;
}

/** Glob with `*` (any run) and `?` (one character); everything else literal. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(value);
}

export class AdmissionPolicy {
  constructor(private readonly cfg: AdmissionConfig, private readonly store: RegistrarStore) {}

  async isAllowlisted(serial: string): Promise<boolean> {
    const entries = [...this.cfg.allowlist, ...(await this.store.listAllowlist())];
    return entries.some((p) => globMatch(p, serial));
  }

  #refuse(serial: string, why: string): BrskiError {
    return new BrskiError(this.cfg.refusalStatus === 403 ? 'forbidden' : 'not-authorized', `pledge ${serial} not admitted: ${why}`);
  }

  /**
   * Resolves when the pledge may proceed; throws a refusal, or a 202 'pending' while an operator
   * has not decided. `onQueued` is called when the pledge newly enters the approval queue.
   */
  async admit(serial: string, manufacturer: string, at: Date, onQueued?: () => Promise<void>): Promise<void> {
    switch (this.cfg.mode) {
      case 'accept':
        return;
      case 'allowlist':
        if (await this.isAllowlisted(serial)) return;
        throw this.#refuse(serial, 'not on the allowlist');
      case 'approve': {
        if (await this.isAllowlisted(serial)) return;
        const existing = await this.store.getApproval(serial);
        const approval = existing ?? await this.store.requestApproval(serial, manufacturer, at.toISOString());
        if (approval.decision === 'approved') return;
        if (approval.decision === 'denied') throw this.#refuse(serial, 'denied by an operator');
        if (!existing) await onQueued?.();
        throw new BrskiError('pending', `pledge ${serial} awaits operator approval`, { retryAfter: this.cfg.approvalRetryAfter });
      }
    }
  }
}
