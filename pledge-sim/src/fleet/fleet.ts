/**
 * Many pledges against one or more registrars with bounded concurrency. Each pledge gets its own
 * secure element, agent and TLS session; the fleet only aggregates: per-phase latencies,
 * failures by named reason, throughput.
 */
import type { X509Certificate } from 'node:crypto';
import { VOUCHER_FORMATS, type VoucherFormat } from '@brski/shared/media';
import { Pledge, type PledgeConfig } from '../pledge/pledge.ts';
import { isPledgeFailure, type PledgeFailureReason } from '../pledge/errors.ts';
import type { RetryPolicy } from '../pledge/transport.ts';
import type { SecureElement } from '../se/secure-element.ts';
import { Histogram, type LatencyStats } from './histogram.ts';

export type FleetFormat = VoucherFormat | 'mixed';
export const PHASES = ['tls', 'voucher', 'enroll', 'total'] as const;
export type Phase = (typeof PHASES)[number];

export interface FleetOptions {
  count: number;
  concurrency: number;
  format: FleetFormat;
  registrars: readonly string[];
  trust: readonly X509Certificate[];
  /** Supplies pledge i's manufactured secure element (from a PKI directory or the factory). */
  secureElement: (index: number) => Promise<SecureElement>;
  retry?: Partial<RetryPolicy>;
  voucherAttempts?: number;
  /** Fresh attempts after a refused voucher request (see PledgeConfig.refusalRetries). */
  refusalRetries?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called after each pledge finishes. */
  onResult?: (r: PledgeOutcome, progress: { done: number; ok: number; failed: number }) => void;
  /** Extra per-pledge configuration (tests, CLI flags). */
  pledgeConfig?: Partial<PledgeConfig>;
}

export interface PledgeOutcome {
  index: number;
  serial?: string;
  format: VoucherFormat;
  ok: boolean;
  reason?: PledgeFailureReason | 'error';
  message?: string;
  registrar?: string;
  ldevidSerial?: string;
  ldevidPem?: string;
  timings?: Record<Phase, number>;
}

export interface FleetReport {
  count: number;
  concurrency: number;
  format: FleetFormat;
  onboarded: number;
  failed: number;
  failuresByReason: Record<string, number>;
  byFormat: Record<string, { onboarded: number; failed: number }>;
  durationMs: number;
  /** Full onboardings per second (wall clock of the whole fleet). */
  throughput: number;
  latency: Record<Phase, LatencyStats>;
  outcomes: PledgeOutcome[];
}

export function formatFor(format: FleetFormat, index: number): VoucherFormat {
  return format === 'mixed' ? VOUCHER_FORMATS[index % VOUCHER_FORMATS.length]! : format;
}

export async function runFleet(opts: FleetOptions): Promise<FleetReport> {
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new RangeError('count must be a non-negative integer');
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  const hist: Record<Phase, Histogram> = { tls: new Histogram(), voucher: new Histogram(), enroll: new Histogram(), total: new Histogram() };
  const outcomes: PledgeOutcome[] = new Array(opts.count);
  const progress = { done: 0, ok: 0, failed: 0 };
  let next = 0;
  const started = performance.now();

  async function one(index: number): Promise<PledgeOutcome> {
    const format = formatFor(opts.format, index);
    let serial: string | undefined;
    try {
      const se = await opts.secureElement(index);
      const pledge = new Pledge({
        se, format, registrars: opts.registrars, trust: opts.trust,
        ...(opts.retry ? { retry: opts.retry } : {}),
        ...(opts.voucherAttempts ? { voucherAttempts: opts.voucherAttempts } : {}),
        ...(opts.refusalRetries ? { refusalRetries: opts.refusalRetries } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...opts.pledgeConfig,
      });
      serial = pledge.serial;
      const r = await pledge.onboard();
      return {
        index, serial, format, ok: true, registrar: r.registrar, ldevidSerial: r.ldevid.serialNumber, ldevidPem: r.ldevid.toString(),
        timings: { tls: r.timings.tls, voucher: r.timings.voucher, enroll: r.timings.enroll, total: r.timings.total },
      };
    } catch (e) {
      const base = { index, format, ok: false, message: (e as Error).message, ...(serial ? { serial } : {}) };
      return isPledgeFailure(e)
        ? { ...base, reason: e.reason, ...(e.registrar ? { registrar: e.registrar } : {}) }
        : { ...base, reason: 'error' };
    }
  }

  async function worker(): Promise<void> {
    while (next < opts.count) {
      if (opts.signal?.aborted) return;
      const index = next++;
      const o = await one(index);
      outcomes[index] = o;
      progress.done++;
      if (o.ok) {
        progress.ok++;
        for (const p of PHASES) hist[p].record(o.timings![p]);
      } else progress.failed++;
      opts.onResult?.(o, { ...progress });
    }
  }

  await Promise.all(Array.from({ length: Math.min(opts.concurrency, Math.max(1, opts.count)) }, worker));
  const durationMs = performance.now() - started;
  const done = outcomes.filter(Boolean);
  const failuresByReason: Record<string, number> = {};
  const byFormat: Record<string, { onboarded: number; failed: number }> = {};
  for (const o of done) {
    const f = (byFormat[o.format] ??= { onboarded: 0, failed: 0 });
    if (o.ok) f.onboarded++;
    else { f.failed++; failuresByReason[o.reason!] = (failuresByReason[o.reason!] ?? 0) + 1; }
  }
  return {
    count: opts.count, concurrency: opts.concurrency, format: opts.format,
    onboarded: progress.ok, failed: progress.failed, failuresByReason, byFormat, durationMs,
    throughput: durationMs > 0 ? progress.ok / (durationMs / 1000) : 0,
    latency: { tls: hist.tls.stats(), voucher: hist.voucher.stats(), enroll: hist.enroll.stats(), total: hist.total.stats() },
    outcomes: done,
  };
}
