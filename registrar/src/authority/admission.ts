/**
 * Admission policy (issue item 2): which authenticated pledges may get a voucher.
 *   accept    — any pledge of a trusted manufacturer;
 *   allowlist — serials or glob patterns from the config plus the admin-edited list;
 *   approve   — allow-listed pledges pass, others wait in a queue (202 + Retry-After) until an
 *               operator approves or denies.
 * Refusals use 404 (RFC 8995 SHOULD) or 403 (admin-fixable) per config.
 *
 * The mode is an operator setting: `policy.mode` in registrar.yaml is the initial value, and an
 * operator may change it (console policy page, PUT /admin/policy/mode). The operator's choice is
 * kept in the store, so every registrar process sharing the store applies the same rule, and
 * every change is logged and appended to the store's policy trail.
 */
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { ADMISSION_MODES, type AdmissionMode, type AdmissionModeRecord, type PolicyChangeRecord, type RegistrarStore } from '../store/types.ts';

export type PolicyMode = AdmissionMode;
export const POLICY_MODES = ADMISSION_MODES;

export interface AdmissionConfig {
  mode: PolicyMode;
  allowlist: readonly string[];
  approvalRetryAfter: number;
  refusalStatus: 403 | 404;
}

/** The mode in force and where it comes from. */
export interface EffectiveMode {
  mode: PolicyMode;
  source: 'config' | 'operator';
  /** The mode registrar.yaml sets (what a reset returns to). */
  configured: PolicyMode;
  setAt?: string;
  setBy?: string;
}

export interface ModeChange { before: EffectiveMode; after: EffectiveMode; changed: boolean }

/** Glob with `*` (any run) and `?` (one character); everything else literal. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(value);
}

export function parseMode(v: unknown): PolicyMode {
  if (typeof v !== 'string' || !(POLICY_MODES as readonly string[]).includes(v)) {
    throw new BrskiError('malformed', `mode must be one of ${POLICY_MODES.join(', ')}`);
  }
  return v as PolicyMode;
}

/**
 * How long a policy may answer from its last read of the stored mode. Bounded staleness for
 * OTHER processes (and other AdmissionPolicy objects) on the same store; a change made through
 * this object is visible through it at once. Keeps the voucher hot path at no store read per
 * request under load.
 */
export const MODE_CACHE_MS = 1000;

/**
 * One per registrar: createRegistrar builds it and passes the same object to the voucher service,
 * the admin API and the console (no lookup by store).
 */
export class AdmissionPolicy {
  #mode: { value: AdmissionModeRecord | undefined; until: number } | undefined;

  constructor(private readonly cfg: AdmissionConfig, private readonly store: RegistrarStore) {}

  get config(): Readonly<AdmissionConfig> { return this.cfg; }

  async #stored(): Promise<AdmissionModeRecord | undefined> {
    const hit = this.#mode;
    const t = Date.now();
    if (hit && hit.until > t) return hit.value;
    const value = await this.store.getAdmissionMode();
    this.#mode = { value, until: t + MODE_CACHE_MS };
    return value;
  }

  /** The mode in force; `fresh` bypasses the cache (operator pages and the admin API). */
  async currentMode(fresh = false): Promise<EffectiveMode> {
    if (fresh) this.#mode = undefined;
    const rec = await this.#stored();
    return rec
      ? { mode: rec.mode, source: 'operator', configured: this.cfg.mode, setAt: rec.setAt, setBy: rec.setBy }
      : { mode: this.cfg.mode, source: 'config', configured: this.cfg.mode };
  }

  /**
   * Sets the operator mode, or with `null` returns to the configured one. A request that would
   * change nothing writes nothing. Each change is logged and appended to the store's trail.
   */
  async setMode(mode: PolicyMode | null, o: { by: string; via: string; at: Date; log?: Logger | undefined }): Promise<ModeChange> {
    const before = await this.currentMode(true);
    const noop = mode === null ? before.source === 'config' : before.source === 'operator' && before.mode === mode;
    if (noop) return { before, after: before, changed: false };
    const at = o.at.toISOString();
    const to = mode ?? this.cfg.mode;
    const change: PolicyChangeRecord = { at, by: o.by, via: o.via, from: before.mode, to, ...(mode === null ? { reset: true } : {}) };
    this.#mode = undefined;
    try {
      await this.store.setAdmissionMode(mode === null ? null : { mode, setAt: at, setBy: o.by }, change);
    } finally {
      this.#mode = undefined;
    }
    const after = await this.currentMode(true);
    o.log?.warn({ event: 'admission-mode-changed', from: before.mode, to: after.mode, source: after.source, by: o.by, via: o.via }, 'admission mode changed');
    return { before, after, changed: true };
  }

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
    switch ((await this.currentMode()).mode) {
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
