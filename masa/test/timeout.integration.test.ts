/**
 * A request that outlives limits.requestTimeoutMs is answered 503 + Retry-After; the abandoned
 * attempt must then store nothing, so that the registrar's retry of the identical RVR is served
 * instead of meeting its own nonce in the ledger (403 replayed-nonce).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { MemoryMasaStore } from '../src/store/memory.ts';
import type { IssuanceContext } from '../src/store/types.ts';
import { startMasa, type Harness } from './helpers/harness.ts';
import { buildPvr, buildRvr, makePki, makePledge, type TestPki } from './helpers/pki.ts';

const RV = '/.well-known/brski/requestvoucher';

/** A store whose pre-voucher read takes `delayMs` while `slow` is set (a Redis stall). */
class StallingStore extends MemoryMasaStore {
  slow = false;
  constructor(private readonly delayMs: number) { super(); }
  override async issuanceContext(serial: string, opts?: { productLine?: string }): Promise<IssuanceContext> {
    if (this.slow) await new Promise((r) => setTimeout(r, this.delayMs));
    return super.issuanceContext(serial, opts);
  }
}

describe('MASA request timeout', () => {
  let pki: TestPki;
  let h: Harness;
  const store = new StallingStore(600);
  beforeAll(async () => {
    pki = await makePki();
    h = await startMasa(pki, store, (raw) => { raw['limits'] = { ...(raw['limits'] ?? {}), requestTimeoutMs: 200 }; });
  });
  afterAll(async () => { await h?.stop(); });

  it('503 + Retry-After, nothing stored after the deadline, and the identical retry gets its voucher', async () => {
    const p = await makePledge(pki);
    const reg = await h.admin('PUT', `/admin/devices/${p.serial}`,
      { certificate: Buffer.from(p.idevid.cert.raw).toString('base64'), productLine: 'widget', policy: 'open' });
    expect(reg.status, reg.text).toBe(201);
    const rvr = await buildRvr('jws', p, pki.domainA, await buildPvr('jws', p, pki.domainA.registrar));
    const c = h.client(pki.domainA.registrar);

    store.slow = true;
    const first = await c.post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
    expect(first.status, first.text).toBe(503);
    expect(first.headers['retry-after']).toBe('1');
    // Let the abandoned attempt run to its end (the stalled read returns after 600 ms).
    await new Promise((r) => setTimeout(r, 900));
    expect(await store.readAudit(p.serial)).toEqual([]);
    expect(h.logs.some((l) => l['code'] === 'unavailable')).toBe(true);

    store.slow = false;
    const retry = await c.post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
    expect(retry.status, retry.text).toBe(200);
    expect(await store.readAudit(p.serial)).toHaveLength(1);
  });
});
