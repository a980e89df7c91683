/**
 * Fault: Redis (AOF on) restarts in the middle of a fleet. Nothing a client was told about may be
 * lost: every LDevID a pledge holds must be on record at the registrar, every voucher a pledge
 * received must be in the registrar's voucher records and in the MASA's hash-chained audit log.
 *
 * Pledges give up a voucher exchange after 40 s of 202/503 (the restart itself takes well under a
 * second, the services' retry hints a few seconds): a pledge stuck on a registrar voucher job that
 * nobody works on any more (see redis-window.test.ts) then fails with `retries-exhausted` inside
 * the test's time limit, and the diagnosis printed at 60 s and on failure names the stuck jobs,
 * instead of the whole test timing out with no clue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithStores, failures, fleet } from './helpers/fleet.ts';
import { diagnosis, InFlight } from './helpers/diagnose.ts';
import { FaultStack } from './helpers/stack.ts';

const FLEET = 60;
let stack: FaultStack;

beforeAll(async () => {
  stack = await FaultStack.create({
    devices: FLEET,
    registrar: (d) => { d['masa'] = { ...d['masa'], retryAfter: 1, backgroundDelayMs: 250 }; },
  });
}, 120_000);
afterAll(async () => { await stack?.stop(); });

describe('Redis restarted (AOF) mid-fleet', () => {
  it('no acknowledged voucher, audit entry or certificate record is lost; every pledge onboards', async () => {
    let reached!: () => void;
    const started = new Promise<void>((r) => { reached = r; });
    let done = 0;
    const inFlight = new InFlight();
    const run = fleet(stack, { offset: 0, count: FLEET, concurrency: 6, inFlight, retry: { maxTotalSeconds: 40 },
      onResult: (_o, p) => { done = p.done; if (p.ok >= FLEET / 6) reached(); } });
    const watchdog = setTimeout(() => {
      void diagnosis(stack, inFlight).then((d) => console.log(`[faults] redis-restart still running after 60 s: ${d}`));
    }, 60_000);
    // If the fleet ends before reaching the mark (every pledge failing early), do not wait forever:
    // fall through so the assertions below say what happened.
    await Promise.race([started, run]);
    const doneAtRestart = done;
    const t0 = Date.now();
    await stack.redis.restart();
    const redisBackSeconds = (Date.now() - t0) / 1000;
    const report = await run.finally(() => clearTimeout(watchdog));
    const loss = await compareWithStores(stack, report.outcomes);
    const figures = { doneAtRestart, redisBackSeconds, onboarded: report.onboarded, failed: report.failed, byReason: report.failuresByReason,
      lost: { certificates: loss.certificatesLost.length, vouchers: loss.vouchersLost.length, audit: loss.auditBroken.length }, checked: loss.checked };
    console.log(`[faults] redis-restart ${JSON.stringify(figures)}`);

    expect(doneAtRestart).toBeLessThan(FLEET / 2);
    if (report.failed > 0) console.log(`[faults] redis-restart diagnosis: ${await diagnosis(stack, inFlight)}`);
    expect(report.failed, failures(report)).toBe(0);
    expect(loss).toMatchObject({ checked: FLEET, certificatesLost: [], vouchersLost: [], auditBroken: [], duplicateSerials: [] });
    // The services reconnected by themselves: both still answer health checks without a restart.
    expect(stack.masa.starts).toBe(1);
    expect(stack.registrar.starts).toBe(1);
  }, 110_000);
});
