/**
 * State-changing console operations. Each one composes the same store / CA calls the admin API
 * route for the operation makes (registrar/src/admin/routes.ts), with the same validation, so the
 * console and the JSON API cannot drift apart in what an approval or a revocation means.
 */
import { BrskiError } from '@brski/shared/errors';
import type { DomainCa } from '../ca/domain-ca.ts';
import type { ApprovalRecord, RegistrarStore, RevocationReason } from '../store/types.ts';
import { REVOCATION_REASONS } from './views/certificates.ts';

export interface ActionDeps { store: RegistrarStore; ca: DomainCa; now: () => Date }

/** Pledge serials as they appear in IDevIDs: printable, bounded. */
const SERIAL = /^[\x21-\x7e]{1,128}$/;
const ALLOW_ENTRY = /^[\x21-\x7e]{1,128}$/;

export function parseReason(v: string | undefined, fallback: RevocationReason): RevocationReason {
  if (v === undefined || v === '') return fallback;
  if (!(REVOCATION_REASONS as readonly string[]).includes(v)) throw new BrskiError('malformed', `unknown revocation reason ${JSON.stringify(v).slice(0, 40)}`);
  return v as RevocationReason;
}

export function checkSerial(s: string): string {
  if (!SERIAL.test(s)) throw new BrskiError('malformed', 'serial must be 1..128 printable ASCII characters');
  return s;
}

/** Approve or deny one pledge (admin API: POST /admin/pledges/:serial/approve|deny). */
export async function decide(d: ActionDeps, serial: string, decision: 'approved' | 'denied', by: string): Promise<ApprovalRecord | undefined> {
  checkSerial(serial);
  const at = d.now().toISOString();
  // Approving a pledge that has not asked yet pre-approves it.
  if (!(await d.store.getApproval(serial))) await d.store.requestApproval(serial, undefined, at);
  const rec = await d.store.decideApproval(serial, decision, by, at);
  await d.store.updatePledge(serial, decision === 'denied' ? { state: 'failed', lastError: 'denied by an operator' } : {},
    { type: decision === 'approved' ? 'approved' : 'denied', detail: { by } });
  return rec;
}

/** Revoke one LDevID (admin API: POST /admin/certificates/:serial/revoke); false if already revoked. */
export async function revokeCertificate(d: ActionDeps, serialNumber: string, reason: RevocationReason): Promise<boolean> {
  const serial = serialNumber.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{1,64}$/.test(serial)) throw new BrskiError('malformed', 'certificate serial must be hex');
  if (!(await d.store.getCertificate(serial))) throw new BrskiError('not-found', `no certificate ${serial}`);
  return d.ca.revoke(serial, reason);
}

/** Revoke a device and all its certificates (admin API: POST /admin/pledges/:serial/revoke). */
export async function revokeDevice(d: ActionDeps, serial: string, reason: RevocationReason): Promise<string[]> {
  checkSerial(serial);
  if (!(await d.store.getPledge(serial))) throw new BrskiError('not-found', `no pledge ${serial}`);
  return d.ca.revokeDevice(serial, reason === 'unspecified' ? 'cessationOfOperation' : reason);
}

export async function addAllowlist(d: ActionDeps, entry: string): Promise<boolean> {
  if (!ALLOW_ENTRY.test(entry)) throw new BrskiError('malformed', 'allowlist entry: 1..128 printable ASCII characters without spaces');
  return d.store.addAllowlist(entry);
}

export async function removeAllowlist(d: ActionDeps, entry: string): Promise<void> {
  if (!(await d.store.removeAllowlist(entry))) throw new BrskiError('not-found', 'no such allowlist entry');
}
