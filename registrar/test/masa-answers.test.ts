/**
 * MASA answers other than a plain voucher in the requested format (digest §3.2, §3.3, §2.1 e/f):
 * a 202 is temporary like a 503 (its Retry-After honoured), a 3xx is a 502 that is not remembered,
 * a voucher in another format is relayed when the pledge accepts that format, a pin is matched by
 * public key, and the RVR never carries domain-cert-revocation-checks.
 */
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { issueCertificate, rootCaProfile } from '@brski/shared/pki/index';
import type { Voucher } from '@brski/shared/voucher/model';
import { parseRetryAfter } from '../src/masa-client/client.ts';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request, type HttpResult } from './helpers/client.ts';
import type { TestMasa } from './helpers/test-masa.ts';
import { startRegistrarWorld, type RegistrarWorld } from './helpers/world.ts';

let world: RegistrarWorld;
let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;

beforeAll(async () => {
  world = await startRegistrarWorld({ devices: 10 });
  ({ fx, masa, reg } = world);
});
afterAll(async () => { await world?.stop(); });

function post(r: Registrar, p: TestPledge, body: Uint8Array, format: VoucherFormat, accept?: string): Promise<HttpResult> {
  return request(`${r.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE[format], ...(accept ? { accept } : {}) }, body, key: p.keyPem, cert: p.certPem,
  });
}

const digestOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MASA 202 and 3xx (digest §3.3)', () => {
  it('a MASA 202 is temporary like a 503: the pledge gets 202 + the MASA\'s Retry-After, the background retry waits for it and gets the voucher', async () => {
    const p = fx.pledges[0]!;
    const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const calls = masa.calls;
    masa.mode = { kind: 'refuse', status: 202, text: 'voucher not ready', headers: { 'retry-after': '2' } };
    const first = await post(reg, p, bytes, 'jws');
    masa.mode = { kind: 'ok' };
    expect(first.status, first.body.toString()).toBe(202);
    expect(first.headers['retry-after']).toBe('2'); // the MASA's wait, not our configured 1 s
    expect((await reg.store.getVoucherJob(digestOf(bytes)))?.status).toBe('pending');
    expect((await reg.store.getPledge(p.serial))?.state).toBe('requested');
    // Our background delay is 50 ms, but the MASA asked for 2 s.
    await sleep(1000);
    expect(masa.calls).toBe(calls + 1);
    let res = first;
    for (let i = 0; i < 60 && res.status === 202; i++) {
      await sleep(100);
      res = await post(reg, p, bytes, 'jws');
    }
    expect(res.status, res.body.toString()).toBe(200);
    expect(masa.calls).toBe(calls + 2); // the pledge's retries were answered from the pending job
    expect((await reg.store.getPledge(p.serial))?.state).toBe('voucher-issued');
  });

  it('caps the MASA\'s Retry-After at 60 s for the pledge and keeps the exchange pending', async () => {
    const p = fx.pledges[1]!;
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const calls = masa.calls;
    masa.mode = { kind: 'refuse', status: 202, text: '', headers: { 'retry-after': '3600' } };
    const first = await post(reg, p, bytes, 'cms');
    masa.mode = { kind: 'ok' };
    expect(first.status).toBe(202);
    expect(first.headers['retry-after']).toBe('60');
    const again = await post(reg, p, bytes, 'cms');
    expect(again.status).toBe(202);
    expect(masa.calls).toBe(calls + 1);
  });

  it('a MASA 3xx is 502 for the pledge but not remembered: the identical retry reaches the MASA again', async () => {
    const p = fx.pledges[2]!;
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk' });
    const calls = masa.calls;
    masa.mode = { kind: 'refuse', status: 302, text: 'moved', headers: { location: 'https://elsewhere.example/.well-known/brski/requestvoucher' } };
    const first = await post(reg, p, bytes, 'cose');
    masa.mode = { kind: 'ok' };
    expect(first.status).toBe(502);
    expect(first.body.toString()).toMatch(/upstream-invalid/);
    expect(await reg.store.getVoucherJob(digestOf(bytes))).toBeUndefined();
    const again = await post(reg, p, bytes, 'cose');
    expect(again.status, again.body.toString()).toBe(200);
    expect(masa.calls).toBe(calls + 2);
  });

  it('parses Retry-After as delta-seconds or HTTP-date and ignores anything else', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:45 GMT', now)).toBe(45);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('voucher format chosen by the MASA (digest §3.2, §2.1 e)', () => {
  it('relays a voucher in another format when the pledge\'s Accept admits it', async () => {
    const p = fx.pledges[3]!;
    const { bytes, nonce } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const accept = `${VOUCHER_MEDIA_TYPE.jws}, ${VOUCHER_MEDIA_TYPE.cms};q=0.5`;
    masa.mode = { kind: 'answer-as', format: 'cms' };
    const res = await post(reg, p, bytes, 'jws', accept);
    masa.mode = { kind: 'ok' };
    expect(res.status, res.body.toString()).toBe(200);
    expect(masa.lastAccept).toBe(VOUCHER_MEDIA_TYPE.jws); // we asked for the PVR's format
    expect(res.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE.cms);
    const v = await verifyVoucherArtifact<Voucher>('cms', new Uint8Array(res.body), {
      anchors: [new X509Certificate(fx.pem('manufacturer-ca.pem'))], kind: 'voucher', strict: false, role: 'voucher' });
    expect(Buffer.from(v.decoded.data.nonce!).equals(Buffer.from(nonce))).toBe(true);
    expect((await reg.store.getVoucher(p.serial))!.format).toBe('cms');
    const again = await post(reg, p, bytes, 'jws', accept);
    expect(again.status).toBe(200);
    expect(again.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE.cms);
  });

  it.each([
    ['an Accept that excludes it', 4, VOUCHER_MEDIA_TYPE.jws],
    ['no Accept (only the PVR\'s format will do)', 5, undefined],
  ] as const)('refuses (502) a voucher in a format the pledge cannot take: %s', async (_what, index, accept) => {
    const p = fx.pledges[index]!;
    const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
    masa.mode = { kind: 'answer-as', format: 'cms' };
    const res = await post(reg, p, bytes, 'jws', accept);
    masa.mode = { kind: 'ok' };
    expect(res.status).toBe(502);
    expect(res.body.toString()).toMatch(/does not accept/);
    expect(await reg.store.getVoucher(p.serial)).toBeUndefined();
  });
});

describe('pinned-domain-cert matched by public key (digest §2.1 f.7)', () => {
  const domainSubject: Array<[string, string]> = [['O', 'Example Owner'], ['CN', 'Example Domain CA']];

  it('accepts a re-issued copy of our domain CA (same key, other bytes), relays it unchanged and logs it', async () => {
    const key = createPrivateKey(fx.pem('domain-ca.key'));
    const reissued = await issueCertificate(rootCaProfile({ subject: domainSubject, publicKey: fx.domainCa.publicKey, days: 400 }),
      { signer: new SoftwareSigner(key) });
    expect(reissued.raw.equals(fx.domainCa.raw)).toBe(false);
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as { level: number; msg: string }); } });
    const r = createRegistrar(fx.config, { logger });
    await r.start();
    try {
      const p = fx.pledges[6]!;
      const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
      masa.mode = { kind: 'pin', cert: reissued };
      const res = await post(r, p, bytes, 'cms');
      masa.mode = { kind: 'ok' };
      expect(res.status, res.body.toString()).toBe(200);
      const v = await verifyVoucherArtifact<Voucher>('cms', new Uint8Array(res.body), {
        anchors: [new X509Certificate(fx.pem('manufacturer-ca.pem'))], kind: 'voucher', strict: false, role: 'voucher' });
      expect(Buffer.from(v.decoded.data.pinnedDomainCert!).equals(reissued.raw)).toBe(true);
      expect(lines.some((l) => l.level === 30 && /one of our public keys but other bytes/.test(l.msg))).toBe(true);
    } finally { await r.stop(); }
  });

  it('refuses (502) a look-alike of our domain CA with another key', async () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const lookAlike = await issueCertificate(rootCaProfile({ subject: domainSubject, publicKey: k.publicKey }), { signer: new SoftwareSigner(k.privateKey) });
    const p = fx.pledges[7]!;
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    masa.mode = { kind: 'pin', cert: lookAlike };
    const res = await post(reg, p, bytes, 'cms');
    masa.mode = { kind: 'ok' };
    expect(res.status).toBe(502);
    expect(res.body.toString()).toMatch(/pinned-domain-cert is not a certificate of this domain/);
    expect(await reg.store.getVoucher(p.serial)).toBeUndefined();
  });
});

describe('RVR leaves', () => {
  it('masa.domainCertRevocationChecks is still accepted in the config but never put into the RVR (digest §5.2)', async () => {
    const r = createRegistrar({ ...fx.config, masa: { ...fx.config.masa, domainCertRevocationChecks: true } });
    await r.start();
    try {
      const p = fx.pledges[8]!;
      const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
      const res = await post(r, p, bytes, 'jws');
      expect(res.status, res.body.toString()).toBe(200);
      expect(masa.lastRvr!.data.serialNumber).toBe(p.serial);
      expect(masa.lastRvr!.data.domainCertRevocationChecks).toBeUndefined();
    } finally { await r.stop(); }
  });
});
