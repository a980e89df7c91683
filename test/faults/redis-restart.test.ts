/**
 * Fault: Redis (AOF on) restarts in the middle of a fleet. Nothing a client was told about may be
 * lost: every LDevID a pledge holds must be on record at the registrar, every voucher a pledge
 * received must be in the registrar's voucher records and in the MASA's hash-chained audit log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareWithStores, failures, fleet } from './helpers/fleet.ts';
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
    const run = fleet(stack, { offset: 0, count: FLEET, concurrency: 6, onResult: (_o, p) => { done = p.done; if (p.ok >= FLEET / 6) reached(); } });
    // If the fleet ends before reaching the mark (every pledge failing early), do not wait forever:
    // fall through so the assertions below say what happened.
    await Promise.race([started, run]);
    const doneAtRestart = done;
    const t0 = Date.now();
    await stack.redis.restart();
    const redisBackSeconds = (Date.now() - t0) / 1000;
    const report = await run;
    const loss = await compareWithStores(stack, report.outcomes);
    const figures = { doneAtRestart, redisBackSeconds, onboarded: report.onboarded, failed: report.failed, byReason: report.failuresByReason,
      lost: { certificates: loss.certificatesLost.length, vouchers: loss.vouchersLost.length, audit: loss.auditBroken.length }, checked: loss.checked };
    console.log(`[faults] redis-restart ${JSON.stringify(figures)}`);

    expect(doneAtRestart).toBeLessThan(FLEET / 2);
    expect(report.failed, failures(report)).toBe(0);
    expect(loss).toMatchObject({ checked: FLEET, certificatesLost: [], vouchersLost: [], auditBroken: [], duplicateSerials: [] });
    // The services reconnected by themselves: both still answer health checks without a restart.
    expect(stack.masa.starts).toBe(1);
    expect(stack.registrar.starts).toBe(1);
  }, 110_000);
});
