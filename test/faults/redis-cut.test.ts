/**
 * Fault: the network between the registrar and Redis is cut (a TCP proxy that resets every
 * connection and refuses new ones), then restored. While cut, the registrar must answer with a
 * clear 503 + Retry-After (never a 500, never a hang); afterwards it must serve pledges again
 * without being restarted. A frozen Redis (SIGSTOP: connections open, no answers) is the
 * nastier variant of the same fault.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { agent, pledgeIdentity, request, validPvr, type RawResponse } from './helpers/client.ts';
import { failures, fleet } from './helpers/fleet.ts';
import { FaultStack } from './helpers/stack.ts';

const PER_PHASE = 8;
let stack: FaultStack;

beforeAll(async () => {
  stack = await FaultStack.create({ devices: 4 * PER_PHASE, registrarRedisProxy: true,
    registrar: (d) => { d['masa'] = { ...d['masa'], retryAfter: 1, backgroundDelayMs: 250 }; } });
}, 120_000);
afterAll(async () => { await stack?.redis.resume(); await stack?.stop(); });

async function probe(i: number): Promise<RawResponse[]> {
  const ag = agent(pledgeIdentity(stack.pki, i));
  try {
    const voucher = await request(ag, stack.registrarUrl, { path: '/.well-known/brski/requestvoucher', body: await validPvr(stack.pki, i, 'jws'),
      headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws }, timeoutMs: 20_000 });
    const crl = await request(ag, stack.registrarUrl, { method: 'GET', path: '/.well-known/est/crl', timeoutMs: 20_000 });
    const health = await request(ag, stack.registrarUrl, { method: 'GET', path: '/healthz', timeoutMs: 20_000 });
    return [voucher, crl, health];
  } finally { ag.destroy(); }
}

function expectClear503(answers: RawResponse[], what: string): void {
  for (const a of answers) {
    if (a.status === 200 && a.headers['content-type']?.toString().includes('pkix-crl')) continue; // a cached CRL may still be served
    expect(a.status, `${what}: ${a.status} ${a.text}`).toBe(503);
    expect(a.text.trim().length, `${what}: empty body`).toBeGreaterThan(0);
    expect(a.ms, `${what}: answer took ${a.ms} ms`).toBeLessThan(10_000);
  }
  expect(answers[0]!.headers['retry-after'], `${what}: voucher 503 without Retry-After`).toMatch(/^\d+$/);
}

async function recover(offset: number): Promise<number> {
  const t0 = Date.now();
  const report = await fleet(stack, { offset, count: PER_PHASE, concurrency: 4, format: 'jws' });
  expect(report.failed, failures(report)).toBe(0);
  return (Date.now() - t0) / 1000;
}

describe('registrar cut off from Redis', () => {
  it('network cut: clear 503s while cut, recovery without restart', async () => {
    expect((await fleet(stack, { offset: 0, count: 2, concurrency: 2, format: 'jws' })).failed).toBe(0); // healthy before
    stack.redisProxy!.cut();
    const during = [...await probe(2), ...await probe(3)];
    console.log(`[faults] redis-cut during ${JSON.stringify(during.map((a) => ({ status: a.status, ms: Math.round(a.ms), body: a.text.trim().slice(0, 90) })))}`);
    stack.redisProxy!.heal();
    const recoverySeconds = await recover(PER_PHASE);
    console.log(`[faults] redis-cut recovery ${JSON.stringify({ recoverySeconds, registrarStarts: stack.registrar.starts })}`);
    expectClear503(during, 'cut');
    expect(stack.registrar.starts).toBe(1);
  }, 110_000);

  it('Redis frozen (SIGSTOP): clear 503s within a bound, recovery without restart', async () => {
    await stack.redis.pause();
    let during: RawResponse[];
    try {
      during = await probe(2 * PER_PHASE);
    } finally {
      await stack.redis.resume();
    }
    console.log(`[faults] redis-frozen during ${JSON.stringify(during.map((a) => ({ status: a.status, ms: Math.round(a.ms), body: a.text.trim().slice(0, 90) })))}`);
    const recoverySeconds = await recover(3 * PER_PHASE);
    console.log(`[faults] redis-frozen recovery ${JSON.stringify({ recoverySeconds, registrarStarts: stack.registrar.starts, masaStarts: stack.masa.starts })}`);
    expectClear503(during, 'frozen');
    expect(stack.registrar.starts).toBe(1);
  }, 110_000);
});
