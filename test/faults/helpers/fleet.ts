/**
 * Fleet runs in the test process (the pledge simulator's runFleet) and the store-side checks
 * that compare what the pledges received with what Redis holds afterwards.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { FleetFormat, FleetReport, PledgeOutcome } from '../../../pledge-sim/src/fleet/fleet.ts';
import { runFleet } from '../../../pledge-sim/src/fleet/fleet.ts';
import { manifestSource } from '../../../pledge-sim/src/fleet/sources.ts';
import type { RetryPolicy } from '../../../pledge-sim/src/pledge/transport.ts';
import { verifyAuditChain } from '../../../masa/src/store/audit-chain.ts';
import type { AuditEntry } from '../../../masa/src/store/types.ts';
import type { InFlight } from './diagnose.ts';
import { DOMAIN, MASA_PREFIX, REGISTRAR_PREFIX, type FaultStack } from './stack.ts';

export interface FleetRun {
  offset: number;
  count: number;
  concurrency: number;
  format?: FleetFormat;
  retry?: Partial<RetryPolicy>;
  onResult?: (o: PledgeOutcome, p: { done: number; ok: number; failed: number }) => void;
  /** Records which pledges are running (for a diagnosis when a fleet does not finish). */
  inFlight?: InFlight;
}

export function fleet(stack: FaultStack, r: FleetRun): Promise<FleetReport> {
  const src = manifestSource(stack.pki.manifest);
  return runFleet({
    count: r.count, concurrency: r.concurrency, format: r.format ?? 'mixed', registrars: [stack.registrarUrl], trust: src.trust,
    secureElement: (i) => { r.inFlight?.started(i); return src.secureElement(r.offset + i); },
    retry: { capSeconds: 1, maxTotalSeconds: 120, transportRetries: 60, ...r.retry },
    // A fault can leave a voucher issued at the MASA but unrecorded at the registrar; the retry of that
    // PVR is then refused (nonce used). Like a real pledge, come back with a new attempt.
    refusalRetries: 2,
    onResult: (o, p) => { r.inFlight?.finished(o.index); r.onResult?.(o, p); },
  });
}

/** A short failure summary for assertion messages. */
export function failures(report: FleetReport): string {
  return JSON.stringify({ failed: report.failed, byReason: report.failuresByReason,
    first: report.outcomes.filter((o) => !o.ok).slice(0, 3).map((o) => `${o.serial}: ${o.reason} ${o.message}`) });
}

const regKey = (suffix: string): string => `${REGISTRAR_PREFIX}{${DOMAIN}}:${suffix}`;
const masaKey = (serial: string, suffix: string): string => `${MASA_PREFIX}masa:dev:{${encodeURIComponent(serial)}}:${suffix}`;

function decodeField(s: string): unknown {
  return JSON.parse(s, (_k, x: unknown) => (x && typeof x === 'object' && typeof (x as { $b64?: unknown }).$b64 === 'string'
    ? Buffer.from((x as { $b64: string }).$b64, 'base64') : x));
}

export async function masaAudit(stack: FaultStack, serial: string): Promise<AuditEntry[]> {
  return (await stack.inspect().lrange(masaKey(serial, 'audit'), 0, -1)).map((s) => JSON.parse(s) as AuditEntry);
}

export interface LossReport {
  checked: number;
  /** LDevIDs a pledge holds that the registrar has no identical record of. */
  certificatesLost: string[];
  /** Pledges with a voucher whose registrar voucher record is missing or unknown to the MASA audit log. */
  vouchersLost: string[];
  /** Pledges whose MASA audit log is empty or whose hash chain does not verify. */
  auditBroken: string[];
  duplicateSerials: string[];
}

/** For every onboarded pledge: its certificate, voucher and audit entry must be in the stores. */
export async function compareWithStores(stack: FaultStack, outcomes: readonly PledgeOutcome[]): Promise<LossReport> {
  const r: LossReport = { checked: 0, certificatesLost: [], vouchersLost: [], auditBroken: [], duplicateSerials: [] };
  const seen = new Set<string>();
  const redis = stack.inspect();
  for (const o of outcomes) {
    if (!o.ok || !o.serial || !o.ldevidPem) continue;
    r.checked++;
    const leaf = new X509Certificate(o.ldevidPem);
    if (seen.has(leaf.serialNumber)) r.duplicateSerials.push(leaf.serialNumber);
    seen.add(leaf.serialNumber);
    const der = await redis.hget(regKey(`cert:${leaf.serialNumber.toUpperCase()}`), 'der');
    if (!der || !(decodeField(der) as Buffer).equals(leaf.raw)) r.certificatesLost.push(`${o.serial} (${leaf.serialNumber})`);
    const audit = await masaAudit(stack, o.serial);
    const chain = verifyAuditChain(audit);
    if (audit.length === 0 || !chain.ok) r.auditBroken.push(`${o.serial}: ${audit.length} entries ${chain.reason ?? ''}`);
    const v = await redis.get(regKey(`voucher:${encodeURIComponent(o.serial)}`));
    const rec = v ? (decodeField(v) as { voucher?: Buffer; format?: string; nonce?: string }) : undefined;
    if (!rec?.voucher) { r.vouchersLost.push(`${o.serial}: no registrar voucher record`); continue; }
    const hash = createHash('sha256').update(rec.voucher).digest('hex');
    // The registrar relays COSE vouchers with the unprotected certificates stripped (cBRSKI), so
    // their bytes differ from what the MASA hashed; the nonce identifies the issuance instead.
    const nonceB64 = rec.nonce ? Buffer.from(rec.nonce, 'hex').toString('base64') : undefined;
    const known = audit.some((e) => e.voucherHash === hash || (rec.format === 'cose' && nonceB64 !== undefined && e.nonce === nonceB64));
    if (!known) r.vouchersLost.push(`${o.serial}: ${rec.format} voucher ${hash.slice(0, 12)} not in the MASA audit log`);
  }
  return r;
}

/** Every certificate record the registrar holds, by serial (for the "issued twice" check). */
export async function registrarCertificateCount(stack: FaultStack): Promise<number> {
  return (await stack.keys(`${regKey('cert:')}*`)).length;
}
