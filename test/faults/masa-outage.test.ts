/**
 * Fault: the MASA goes away in the middle of a fleet and comes back. While it is gone the
 * registrar must answer voucher-requests with 202 or 503 plus Retry-After (never a 5xx crash
 * answer, never a hang); once it is back, every pledge of the fleet must end onboarded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { agent, pledgeIdentity, request, validPvr, type RawResponse } from './helpers/client.ts';
import { compareWithStores, failures, fleet } from './helpers/fleet.ts';
import { FaultStack } from './helpers/stack.ts';

const FLEET = 60;
const PROBES = 3; // pledges 0..2 probe the registrar during the outage; the fleet uses 3..
let stack: FaultStack;

beforeAll(async () => {
  stack = await FaultStack.create({
    devices: PROBES + FLEET,
    registrar: (d) => { d['masa'] = { ...d['masa'], timeoutMs: 2_000, attempts: 1, retryAfter: 1, backgroundDelayMs: 250, backgroundAttempts: 20 }; },
  });
}, 120_000);
afterAll(async () => { await stack?.stop(); });

describe('MASA stopped mid-fleet, then restarted', () => {
  it('pledges get 202/503 with Retry-After during the outage and all onboard afterwards', async () => {
    let done = 0;
    let reached!: () => void;
    const tenth = new Promise<void>((r) => { reached = r; });
    const run = fleet(stack, { offset: PROBES, count: FLEET, concurrency: 6, onResult: (_o, p) => { done = p.done; if (p.ok >= FLEET / 6) reached(); } });
    await tenth;
    const doneAtStop = done;
    await stack.masa.stop('SIGTERM');
    const stoppedAt = Date.now();

    // Probes: fresh pledges asking for a voucher while the MASA is down.
    const probes: RawResponse[] = [];
    for (let i = 0; i < PROBES; i++) {
      const id = pledgeIdentity(stack.pki, i);
      const ag = agent(id);
      const format = (['jws', 'cms', 'cose'] as const)[i]!;
      probes.push(await request(ag, stack.registrarUrl, { path: '/.well-known/brski/requestvoucher', body: await validPvr(stack.pki, i, format),
        headers: { 'content-type': VOUCHER_MEDIA_TYPE[format], accept: VOUCHER_MEDIA_TYPE[format] }, timeoutMs: 15_000 }));
      ag.destroy();
    }
    await new Promise((r) => setTimeout(r, 3_000)); // the outage lasts a few seconds
    const doneDuringOutage = done - doneAtStop;
    await stack.masa.start();
    const restartedAt = Date.now();
    const doneAtRestart = done;
    let recoveredAt = 0;
    const watch = setInterval(() => { if (!recoveredAt && done > doneAtRestart) recoveredAt = Date.now(); }, 20);
    const report = await run;
    clearInterval(watch);

    const figures = {
      outageSeconds: (restartedAt - stoppedAt) / 1000, doneBeforeStop: doneAtStop, completedDuringOutage: doneDuringOutage,
      firstOnboardingAfterRestartSeconds: recoveredAt ? (recoveredAt - restartedAt) / 1000 : null,
      probes: probes.map((p) => ({ status: p.status, retryAfter: p.headers['retry-after'], ms: Math.round(p.ms), body: p.text.trim().slice(0, 80) })),
      onboarded: report.onboarded, failed: report.failed, durationSeconds: Math.round(report.durationMs) / 1000,
    };
    console.log(`[faults] masa-outage ${JSON.stringify(figures)}`);

    for (const p of probes) {
      expect([202, 503], `probe answered ${p.status}: ${p.text}`).toContain(p.status);
      expect(p.headers['retry-after'], 'Retry-After on 202/503').toMatch(/^\d+$/);
    }
    expect(doneAtStop).toBeLessThan(FLEET / 2); // the stop really happened mid-fleet
    expect(report.failed, failures(report)).toBe(0);
    expect(report.onboarded).toBe(FLEET);
    const loss = await compareWithStores(stack, report.outcomes);
    expect(loss).toMatchObject({ checked: FLEET, certificatesLost: [], vouchersLost: [], auditBroken: [], duplicateSerials: [] });
  }, 110_000);
});
