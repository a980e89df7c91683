/**
 * A fleet of constrained pledges over CoAPS (`brski fleet --transport coaps`): the same report
 * shape, phases and percentiles as the HTTPS fleet (fleet/fleet.ts), each pledge running
 * `onboardConstrained` on its own DTLS sessions. Kept beside, not inside, the HTTPS runner: that
 * one drives SecureElement-backed `Pledge`s, while the DTLS engine (OpenSSL) needs the IDevID
 * key as PEM, so constrained pledges come from a PKI directory's key files.
 */
import { createPrivateKey, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { isPledgeFailure } from '../pledge/errors.ts';
import { PHASES, type FleetReport, type Phase, type PledgeOutcome } from '../fleet/fleet.ts';
import { Histogram } from '../fleet/histogram.ts';
import type { PkiManifestLike } from '../fleet/sources.ts';
import { onboardConstrained, type ConstrainedPledgeOptions } from './pledge.ts';

/** What one constrained pledge needs: identity, DTLS credential (PEM) and PVR signer. */
export type ConstrainedIdentity = Pick<ConstrainedPledgeOptions, 'serial' | 'idevid' | 'idevidChainPem' | 'idevidKeyPem' | 'signer'>;

/** Pledge `index` of a `brski pki init` directory, as a constrained device. */
export function constrainedIdentityFrom(m: PkiManifestLike, index: number): ConstrainedIdentity {
  const p = m.pledges[index];
  if (!p) throw new RangeError(`the PKI directory has ${m.pledges.length} pledges; pledge ${index + 1} requested`);
  const certPem = readFileSync(p.cert, 'utf8');
  const keyPem = readFileSync(p.key, 'utf8');
  const certs = parseCertificatesPem(certPem);
  const idevid = certs[0]!;
  // The file may already hold the chain; otherwise the IDevID CA follows the leaf.
  const chainPem = certs.length > 1 ? certPem : certPem + readFileSync(m.idevidCa.cert, 'utf8');
  return { serial: p.serial, idevid, idevidChainPem: chainPem, idevidKeyPem: keyPem, signer: new SoftwareSigner(createPrivateKey(keyPem), [idevid]) };
}

export interface ConstrainedFleetOptions {
  count: number;
  concurrency: number;
  host: string;
  port: number;
  trust: readonly X509Certificate[];
  identity: (index: number) => ConstrainedIdentity | Promise<ConstrainedIdentity>;
  maxWaitSeconds?: number;
  ciphers?: string;
  signal?: AbortSignal;
  onResult?: (r: PledgeOutcome, progress: { done: number; ok: number; failed: number }) => void;
}

export async function runConstrainedFleet(o: ConstrainedFleetOptions): Promise<FleetReport> {
  if (!Number.isInteger(o.count) || o.count < 0) throw new RangeError('count must be a non-negative integer');
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  const hist = Object.fromEntries(PHASES.map((p) => [p, new Histogram()])) as Record<Phase, Histogram>;
  const outcomes: PledgeOutcome[] = [];
  const progress = { done: 0, ok: 0, failed: 0 };
  const failuresByReason: Record<string, number> = {};
  const registrar = `coaps://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  let next = 0;
  const started = performance.now();

  async function one(index: number): Promise<PledgeOutcome> {
    let serial: string | undefined;
    try {
      const id = await o.identity(index);
      serial = id.serial;
      const r = await onboardConstrained({
        ...id, host: o.host, port: o.port, trust: o.trust,
        ...(o.maxWaitSeconds !== undefined ? { maxWaitSeconds: o.maxWaitSeconds } : {}), ...(o.ciphers ? { ciphers: o.ciphers } : {}),
      });
      return { index, serial, format: 'cose', ok: true, registrar, ldevidSerial: r.ldevid.serialNumber, ldevidPem: r.ldevid.toString(), timings: r.timings };
    } catch (e) {
      const base = { index, format: 'cose' as const, ok: false, message: (e as Error).message, registrar, ...(serial ? { serial } : {}) };
      return isPledgeFailure(e) ? { ...base, reason: e.reason } : { ...base, reason: 'error' };
    }
  }

  async function worker(): Promise<void> {
    while (next < o.count && !o.signal?.aborted) {
      const r = await one(next++);
      outcomes[r.index] = r;
      progress.done++;
      if (r.ok) {
        progress.ok++;
        for (const p of PHASES) hist[p].record(r.timings![p]);
      } else {
        progress.failed++;
        failuresByReason[r.reason!] = (failuresByReason[r.reason!] ?? 0) + 1;
      }
      o.onResult?.(r, { ...progress });
    }
  }

  await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, o.count)) }, worker));
  const durationMs = performance.now() - started;
  return {
    count: o.count, concurrency: o.concurrency, format: 'cose',
    onboarded: progress.ok, failed: progress.failed, failuresByReason,
    byFormat: progress.done ? { cose: { onboarded: progress.ok, failed: progress.failed } } : {},
    durationMs, throughput: durationMs > 0 ? progress.ok / (durationMs / 1000) : 0,
    latency: Object.fromEntries(PHASES.map((p) => [p, hist[p].stats()])) as FleetReport['latency'],
    outcomes: outcomes.filter(Boolean),
  };
}

/** `coaps://host[:port]` (default port 5684, RFC 7252) → host and port. */
export function parseCoapsUrl(url: string): { host: string; port: number } {
  let u: URL;
  try { u = new URL(url); } catch { throw new Error(`${url}: not a URL (expected coaps://host:port)`); }
  if (u.protocol !== 'coaps:') throw new Error(`${url}: the coaps transport needs a coaps:// registrar URL`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new Error(`${url}: no host`);
  return { host, port: u.port ? Number(u.port) : 5684 };
}
