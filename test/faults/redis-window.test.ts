/**
 * Fault: the registrar loses Redis while a MASA exchange is in flight (the window that made
 * redis-restart.test.ts time out under a loaded machine). The registrar has already stored a
 * `pending` voucher job for the PVR; the MASA issues the voucher, but the registrar cannot record it.
 * When Redis is back, the pledge's retry with the same PVR must get a final answer (the voucher, or a
 * fresh exchange) within a bounded time, not 202 until the job's TTL (hours) runs out.
 *
 * The MASA keeps a direct Redis connection and the registrar→MASA link is slowed down, so the
 * link can be cut exactly while the exchange is outstanding; nothing here depends on timing luck.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { agent, pledgeIdentity, request, validPvr, type RawResponse } from './helpers/client.ts';
import { voucherJobs } from './helpers/diagnose.ts';
import { DOMAIN, FaultStack, REGISTRAR_PREFIX } from './helpers/stack.ts';

let stack: FaultStack;
const jobPattern = `${REGISTRAR_PREFIX}{${DOMAIN}}:job:*`;

beforeAll(async () => {
  stack = await FaultStack.create({
    devices: 1, masaProxy: true, registrarRedisProxy: true,
    registrar: (d) => { d['masa'] = { ...d['masa'], timeoutMs: 20_000, attempts: 1, retryAfter: 1, backgroundDelayMs: 250 }; },
  });
}, 120_000);
afterAll(async () => { await stack?.stop(); });

async function until(what: string, cond: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Outcome { first: RawResponse; masaIssued: boolean; statuses: number[]; last: RawResponse; jobs: unknown }
let outcome: Outcome | undefined;

describe('registrar loses Redis during a MASA exchange', () => {
  it('the window is hit: the MASA issued, the registrar could not record it and said 503 + Retry-After', async () => {
    const id = pledgeIdentity(stack.pki, 0);
    const pvr = await validPvr(stack.pki, 0, 'jws');
    const send = async (): Promise<RawResponse> => {
      const ag = agent(id);
      try {
        return await request(ag, stack.registrarUrl, { path: '/.well-known/brski/requestvoucher', body: pvr,
          headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws }, timeoutMs: 30_000 });
      } finally { ag.destroy(); }
    };

    stack.masaProxy!.delayMs = 400; // the exchange takes seconds: room to cut the registrar's Redis link
    const pending = send();
    // The registrar records its pending job before it calls the MASA.
    await until('the pending voucher job', async () => (await stack.keys(jobPattern)).length === 1, 20_000);
    await until('the registrar dialling the MASA', () => stack.masaProxy!.connections > 0, 20_000);
    stack.redisProxy!.cut();
    const first = await pending;
    const masaIssued = (await stack.keys('f:masa:masa:dev:*:audit')).length > 0;
    stack.masaProxy!.delayMs = 0;
    stack.redisProxy!.heal();
    await new Promise((r) => setTimeout(r, 1_500)); // reconnect backoff of the registrar's client

    // The pledge's view: retry the same PVR as Retry-After says, for at most 12 s.
    const statuses: number[] = [];
    let last = first;
    const end = Date.now() + 12_000;
    while (Date.now() < end) {
      last = await send();
      statuses.push(last.status);
      if (last.status !== 202 && last.status !== 503) break;
      await new Promise((r) => setTimeout(r, 1_000 * Math.min(2, Number(last.headers['retry-after'] ?? 1))));
    }
    const jobs = await voucherJobs(stack);
    outcome = { first, masaIssued, statuses, last, jobs };
    console.log(`[faults] redis-window ${JSON.stringify({ first: { status: first.status, body: first.text.trim().slice(0, 80) },
      masaIssued, retries: statuses.length, statuses: [...new Set(statuses)], final: last.status, jobs })}`);

    expect(first.status, first.text).toBe(503);
    expect(first.headers['retry-after']).toMatch(/^\d+$/);
    expect(masaIssued).toBe(true);
    expect(statuses.every((s) => [200, 202, 503].includes(s)), statuses.join(',')).toBe(true);
  }, 90_000);

  // The MASA issued and logged a voucher the registrar could not record, and it has used the nonce:
  // the registrar holds the verified voucher in memory (registrar/src/authority/voucher-service.ts)
  // and records it before handing it to the retry of the same PVR, or earlier by its flush timer.
  it('a retry of the same PVR gets the voucher once Redis is back', () => {
    expect(outcome, 'the first test did not get this far').toBeDefined();
    const o = outcome!;
    expect(o.last.status, `${o.statuses.length} retries of the same PVR: ${o.statuses.join(',')}; jobs ${JSON.stringify(o.jobs)}`).toBe(200);
    expect(JSON.stringify(o.jobs)).toContain('"status":"issued"'); // recorded, so any registrar process answers the next retry
  });
});
