/**
 * The store fails after the MASA issued a voucher (digest §2.3: the pledge retries the same PVR).
 * The MASA has consumed the nonce, so the registrar must keep the verified voucher until it can
 * record it, hand it out only once recorded, and never ask the MASA again for that PVR.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { BrskiError } from '@brski/shared/errors';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr, generateKeyPair } from '@brski/shared/pki/index';
import { MemoryRegistrarStore } from '../src/store/memory.ts';
import type { RegistrarStore } from '../src/store/types.ts';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { makeFixture, type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import { startTestMasa, type TestMasa } from './helpers/test-masa.ts';

/** A memory store whose named writes fail like Redis being away, while `failing` is set. */
function flakyStore(): { store: RegistrarStore; failing: Set<string> } {
  const inner = new MemoryRegistrarStore();
  const failing = new Set<string>();
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (failing.has(String(prop))) return Promise.reject(new BrskiError('unavailable', 'registrar store unavailable (test)', { retryAfter: 1 }));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, failing };
}

interface LogLine { level: number; msg: string; serial?: string; by?: string }

let fx: Fixture;
let masa: TestMasa;
let reg: Registrar | undefined;
beforeAll(async () => {
  fx = await makeFixture({ devices: 4 });
  masa = await startTestMasa(fx);
});
afterEach(async () => { await reg?.stop(); reg = undefined; });
afterAll(async () => { await masa?.stop(); });

async function setup(retryAfter = 1) {
  const flaky = flakyStore();
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as LogLine); } });
  reg = createRegistrar({ ...fx.config, masa: { ...fx.config.masa, retryAfter } }, { store: flaky.store, logger });
  await reg.start();
  return { ...flaky, lines, reg };
}

async function askVoucher(r: Registrar, p: TestPledge, pvr: Uint8Array) {
  return request(`${r.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws }, body: pvr, key: p.keyPem, cert: p.certPem,
  });
}

async function enroll(r: Registrar, p: TestPledge) {
  const csr = await createCsr([['CN', p.serial]], new SoftwareSigner(generateKeyPair('P-256').privateKey));
  return request(`${r.url}/.well-known/est/simpleenroll`, {
    method: 'POST', headers: { 'content-type': 'application/pkcs10' }, body: Buffer.from(csr).toString('base64'), key: p.keyPem, cert: p.certPem,
  });
}

describe('voucher obtained while the store fails', () => {
  it('the retry of the same PVR gets the very voucher once the store is back, recorded first; the MASA is asked once', async () => {
    const { failing, lines, reg: r } = await setup(60); // no flush during the test: only the retry records it
    const p = fx.pledges[0]!;
    const { bytes: pvr } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk-sha256' });
    failing.add('saveVoucher');
    const before = masa.calls;
    const first = await askVoucher(r, p, pvr);
    expect(first.status, first.body.toString()).toBe(503);
    expect(first.headers['retry-after']).toMatch(/^\d+$/);
    expect(masa.calls - before).toBe(1);
    expect(r.vouchers.unrecordedVoucherCount).toBe(1);
    expect(await r.store.getVoucher(p.serial)).toBeUndefined();
    expect(lines.some((l) => l.level === 40 && l.serial === p.serial && /held in memory/.test(l.msg))).toBe(true);

    // Still failing: the retry is another 503, the voucher is neither handed out nor dropped.
    const again = await askVoucher(r, p, pvr);
    expect(again.status).toBe(503);
    expect(r.vouchers.unrecordedVoucherCount).toBe(1);

    failing.clear();
    const ok = await askVoucher(r, p, pvr);
    expect(ok.status, ok.body.toString()).toBe(200);
    expect(masa.calls - before).toBe(1); // the MASA was not asked again (it would refuse the used nonce)
    expect(r.vouchers.unrecordedVoucherCount).toBe(0);
    const stored = await r.store.getVoucher(p.serial);
    expect(Buffer.from(stored!.voucher).equals(ok.body)).toBe(true);
    expect(await r.store.getPledge(p.serial)).toMatchObject({ state: 'voucher-issued' });
    expect(lines.some((l) => l.serial === p.serial && l.by === 'retry' && /held voucher recorded/.test(l.msg))).toBe(true);
    // Recorded: enrollment is authorised, and a further retry is answered from the stored job.
    expect((await enroll(r, p)).status).toBe(200);
    const cached = await askVoucher(r, p, pvr);
    expect(cached.status).toBe(200);
    expect(cached.body.equals(ok.body)).toBe(true);
  });

  it('a failure after the voucher was saved (pledge record) is held too, and the flush records it without a retry', async () => {
    const { failing, lines, reg: r } = await setup(1);
    const p = fx.pledges[1]!;
    const { bytes: pvr } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk-sha256' });
    failing.add('putVoucherJob');
    expect((await askVoucher(r, p, pvr)).status).toBe(503);
    expect(r.vouchers.unrecordedVoucherCount).toBe(1);
    failing.clear();
    const end = Date.now() + 5_000;
    while (r.vouchers.unrecordedVoucherCount > 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    expect(r.vouchers.unrecordedVoucherCount).toBe(0);
    expect(lines.some((l) => l.serial === p.serial && l.by === 'flush')).toBe(true);
    expect(await r.store.getPledge(p.serial)).toMatchObject({ state: 'voucher-issued' });
    const before = masa.calls;
    const ok = await askVoucher(r, p, pvr);
    expect(ok.status).toBe(200);
    expect(masa.calls).toBe(before);
  });

  it('a newer voucher for the same pledge supersedes a held one (no late overwrite)', async () => {
    const { failing, reg: r } = await setup(60);
    const p = fx.pledges[2]!;
    const old = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk-sha256' });
    failing.add('saveVoucher');
    expect((await askVoucher(r, p, old.bytes)).status).toBe(503);
    failing.clear();
    const fresh = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk-sha256' });
    const ok = await askVoucher(r, p, fresh.bytes);
    expect(ok.status).toBe(200);
    expect(r.vouchers.unrecordedVoucherCount).toBe(0);
    expect(Buffer.from((await r.store.getVoucher(p.serial))!.voucher).equals(ok.body)).toBe(true);
  });
});
