/**
 * Operator decisions shared by the JSON admin API (routes.ts) and the console (console/actions.ts),
 * so that an approval, a denial or a mode change means exactly the same thing from either place.
 */
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import type { ApprovalRecord, CertificateRecord, RegistrarStore } from '../store/types.ts';

/** Pledge serials as they appear in IDevIDs: printable ASCII, bounded. */
const SERIAL = /^[\x21-\x7e]{1,128}$/;
/** Who decided: free text from the operator, kept short and printable for logs and pages. */
const ACTOR = /^[\x20-\x7e]{1,64}$/;

export function checkSerial(s: string): string {
  if (!SERIAL.test(s)) throw new BrskiError('malformed', 'serial must be 1..128 printable ASCII characters');
  return s;
}

export function checkActor(by: string): string {
  if (!ACTOR.test(by)) throw new BrskiError('malformed', '"by" must be 1..64 printable ASCII characters');
  return by;
}

export interface DecideDeps { store: RegistrarStore; now: () => Date; log?: Logger | undefined }

/**
 * Approve or deny one pledge. Approving a pledge that has not asked yet pre-approves it (the
 * decision waits in the store for its first voucher request). A denial marks the pledge failed,
 * so it shows as such in the lists; an approval leaves the state for the voucher flow to move.
 * Both append an `approved` / `denied` event to the pledge timeline.
 */
export async function decidePledge(d: DecideDeps, serial: string, decision: 'approved' | 'denied', by: string): Promise<ApprovalRecord> {
  checkSerial(serial);
  checkActor(by);
  const at = d.now().toISOString();
  if (!(await d.store.getApproval(serial))) await d.store.requestApproval(serial, undefined, at);
  const rec = await d.store.decideApproval(serial, decision, by, at);
  // requestApproval just ensured the record; its absence now means a concurrent store reset.
  if (!rec) throw new BrskiError('conflict', `approval for ${serial} vanished while deciding`);
  await d.store.updatePledge(serial, decision === 'denied' ? { state: 'failed', lastError: 'denied by an operator' } : {},
    { type: decision, detail: { by }, at });
  d.log?.info({ event: `pledge-${decision}`, serial, by }, `pledge ${decision} by an operator`);
  return rec;
}

/** A certificate record as the admin API and the console present it: no DER bytes. */
export type CertificateSummary = Omit<CertificateRecord, 'der'> & { status: 'current' | 'superseded' | 'revoked' };

export function summarizeCertificate({ der: _der, ...rest }: CertificateRecord): CertificateSummary {
  return { ...rest, status: rest.revokedAt ? 'revoked' : rest.supersededBy ? 'superseded' : 'current' };
}

export const CERT_PAGE_MAX = 500;

/** Paging parameters from a query string: bounded, integers, defaults on absence. */
export function pageOf(q: { offset?: unknown; limit?: unknown }, defLimit = 100, maxLimit = CERT_PAGE_MAX): { offset: number; limit: number } {
  const int = (v: unknown, name: string, def: number, max: number) => {
    if (v === undefined || v === '') return def;
    if (typeof v !== 'string' || !/^\d{1,9}$/.test(v)) throw new BrskiError('malformed', `${name} must be a non-negative integer`);
    return Math.min(Number(v), max);
  };
  return { offset: int(q.offset, 'offset', 0, 1e9), limit: Math.max(1, int(q.limit, 'limit', defLimit, maxLimit)) };
}
