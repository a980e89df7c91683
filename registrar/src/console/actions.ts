/**
 * State-changing console operations. Approvals and mode changes call the very functions the admin
 * API calls (admin/decide.ts, AdmissionPolicy.setMode); revocations and allowlist edits compose the
 * same store / CA calls as the admin API route for them, with the same validation, so the console
 * and the JSON API cannot drift apart in what an operator action means.
 */
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import type { DomainCa } from '../ca/domain-ca.ts';
import { checkSerial, decidePledge } from '../admin/decide.ts';
import { parseMode, type AdmissionPolicy, type ModeChange } from '../authority/admission.ts';
import type { ApprovalRecord, RegistrarStore, RevocationReason } from '../store/types.ts';
import { REVOCATION_REASONS } from './views/certificates.ts';

export { checkSerial };

export interface ActionDeps { store: RegistrarStore; ca: DomainCa; now: () => Date; log?: Logger | undefined }

const ALLOW_ENTRY = /^[\x21-\x7e]{1,128}$/;

export function parseReason(v: string | undefined, fallback: RevocationReason): RevocationReason {
  if (v === undefined || v === '') return fallback;
  if (!(REVOCATION_REASONS as readonly string[]).includes(v)) throw new BrskiError('malformed', `unknown revocation reason ${JSON.stringify(v).slice(0, 40)}`);
  return v as RevocationReason;
}

/** Approve or deny one pledge: the admin API's decidePledge (POST /admin/pledges/:serial/approve|deny). */
export async function decide(d: ActionDeps, serial: string, decision: 'approved' | 'denied', by: string): Promise<ApprovalRecord> {
  return decidePledge({ store: d.store, now: d.now, log: d.log }, serial, decision, by);
}

/**
 * Set the admission mode (admin API: PUT /admin/policy/mode), or with 'config' return to the mode
 * registrar.yaml sets (DELETE /admin/policy/mode).
 */
export async function setMode(d: ActionDeps, policy: AdmissionPolicy, value: string | undefined, by: string): Promise<ModeChange> {
  const mode = value === 'config' ? null : parseMode(value);
  return policy.setMode(mode, { by, via: 'console', at: d.now(), log: d.log });
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
