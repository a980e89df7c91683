/**
 * Load: N pledges through one registrar and one MASA on Redis, 0 errors, bounded memory (peak
 * RSS of each process from /proc/<pid>/status VmHWM, Redis peak from INFO). N is 300 in
 * `npm test`; BRSKI_LOAD=1 runs the full 10,000 (BRSKI_LOAD_COUNT overrides either).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithStores, failures, fleet } from './helpers/fleet.ts';
import { memoryOf } from './helpers/proc.ts';
import { FaultStack } from './helpers/stack.ts';

const FULL = process.env['BRSKI_LOAD'] === '1';
const N = Number(process.env['BRSKI_LOAD_COUNT'] ?? (FULL ? 10_000 : 300));
const CONCURRENCY = Number(process.env['BRSKI_LOAD_CONCURRENCY'] ?? 32);
// Peak RSS a service may reach; generous for Node + TLS + pino, but it must not grow with N.
const RSS_LIMIT_MIB = 512;
let stack: FaultStack;

beforeAll(async () => { stack = await FaultStack.create({ devices: N }); }, FULL ? 1_800_000 : 120_000);
afterAll(async () => { await stack?.stop(); });

describe(`load: ${N} pledges, one registrar, one MASA, Redis`, () => {
  it('0 errors, bounded memory, every record stored', async () => {
    const rss = { masa: 0, registrar: 0 };
    const sample = setInterval(() => {
      try { rss.masa = Math.max(rss.masa, stack.masa.memory().rssMiB); rss.registrar = Math.max(rss.registrar, stack.registrar.memory().rssMiB); } catch { /* exiting */ }
    }, 500);
    let report;
    try {
      report = await fleet(stack, { offset: 0, count: N, concurrency: CONCURRENCY, format: 'mixed' });
    } finally { clearInterval(sample); }
    const peak = { masaMiB: stack.masa.memory().peakRssMiB, registrarMiB: stack.registrar.memory().peakRssMiB, testProcessMiB: memoryOf(process.pid).peakRssMiB };
    const info = await stack.inspect().info('memory');
    const redisPeak = /used_memory_peak_human:(\S+)/.exec(info)?.[1];
    const loss = await compareWithStores(stack, report.outcomes);
    console.log(`[faults] load ${JSON.stringify({ pledges: N, concurrency: CONCURRENCY, onboarded: report.onboarded, failed: report.failed,
      byReason: report.failuresByReason, seconds: Math.round(report.durationMs / 100) / 10, perSecond: Math.round(report.throughput * 10) / 10,
      latencyMs: { p50: report.latency.total.p50, p99: report.latency.total.p99 }, peakRss: peak, sampledRssMaxMiB: rss, redisPeak,
      lost: { certificates: loss.certificatesLost.length, vouchers: loss.vouchersLost.length, audit: loss.auditBroken.length } })}`);
    expect(report.failed, failures(report)).toBe(0);
    expect(report.onboarded).toBe(N);
    expect(loss).toMatchObject({ checked: N, certificatesLost: [], vouchersLost: [], auditBroken: [], duplicateSerials: [] });
    expect(peak.masaMiB).toBeLessThan(RSS_LIMIT_MIB);
    expect(peak.registrarMiB).toBeLessThan(RSS_LIMIT_MIB);
  }, FULL ? 3_600_000 : 115_000);
});
