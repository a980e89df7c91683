/**
 * Factory IDevID issuance over real HTTPS with station client certificates, on the memory store
 * and a real Redis: issuance + traceability record + report, idempotent retry, clone attempt,
 * expired station credential, rate limit, test credentials in production, bad proof of possession.
 */
import { X509Certificate } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { verifyChain } from '@brski/shared/pki/chain';
import { issueCertificate, stationProfile } from '@brski/shared/pki/certificate';
import { createCsr } from '@brski/shared/pki/csr';
import { masaUrlOf, serialNumberOf } from '@brski/shared/pki/identity';
import { generateKeyPair, privateKeyToPem } from '@brski/shared/pki/keys';
import { startRedis, type RedisHandle } from '../../test/helpers/redis.ts';
import { MemoryMasaStore } from '../src/store/memory.ts';
import { RedisMasaStore } from '../src/store/redis.ts';
import type { MasaStore } from '../src/store/types.ts';
import { startMasa, type Harness } from './helpers/harness.ts';
import { buildPvr, buildRvr, makePki, newSerial, type Party, type Pledge, type TestPki } from './helpers/pki.ts';

let pki: TestPki;
let limited: Party;
let redis: RedisHandle;
let redisClient: Redis;
beforeAll(async () => {
  pki = await makePki();
  const kp = generateKeyPair('P-256');
  const cert = await issueCertificate(stationProfile({ subject: [['CN', 'station-limited']], publicKey: kp.publicKey }),
    { signer: pki.stationCa.signer, certificate: pki.stationCa.cert });
  limited = { cert, signer: new SoftwareSigner(kp.privateKey, [cert, pki.stationCa.cert]), keyPem: privateKeyToPem(kp.privateKey) };
  redis = await startRedis();
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: 2 });
});
afterAll(async () => { await redisClient?.quit(); await redis?.stop(); });

async function csrFor(serial: string, key = generateKeyPair('P-256')) {
  const signer = new SoftwareSigner(key.privateKey);
  const der = await createCsr([['CN', `Pledge ${serial}`], ['serialNumber', serial]], signer);
  return { key, signer, csr: Buffer.from(der).toString('base64') };
}

const stores: Array<[string, () => MasaStore]> = [
  ['memory', () => new MemoryMasaStore()],
  ['redis', () => new RedisMasaStore(redisClient)],
];

describe.each(stores)('factory (%s store)', (_n, makeStore) => {
  let h: Harness;
  beforeAll(async () => { h = await startMasa(pki, makeStore()); });
  afterAll(async () => { await h?.stop(); });

  const issue = (station: Party, body: unknown) =>
    h.client(station).post('/factory/idevid', JSON.stringify(body), 'application/json');

  async function refused(r: { status: number; text: string; headers: Record<string, unknown> }, status: number, code: string, serial: string) {
    expect(r.status, r.text).toBe(status);
    expect(String(r.headers['content-type'])).toMatch(/^text\/plain/);
    expect(r.text).toContain(code);
    expect(h.logs.some((l) => l['code'] === code)).toBe(true);
    expect(await h.store.getDevice(serial)).toBeUndefined();
  }

  it('issues a traceable IDevID that then gets a voucher; same-key retry returns the same certificate', async () => {
    const serial = newSerial();
    const { key, signer, csr } = await csrFor(serial);
    const r = await issue(pki.station, { serialNumber: serial, csr, productLine: 'widget', location: 'Line 3' });
    expect(r.status, r.text).toBe(201);
    const body = JSON.parse(r.text);
    const cert = new X509Certificate(Buffer.from(body.certificate, 'base64'));
    expect(serialNumberOf(cert)).toBe(serial);
    expect(masaUrlOf(cert)).toBe(pki.masaUrl);
    expect(cert.publicKey.equals(key.publicKey)).toBe(true);
    verifyChain(cert, [], [pki.vendor.cert]);
    expect(await h.store.getDevice(serial)).toMatchObject({ station: 'station-1', location: 'Line 3', productLine: 'widget',
      keyFingerprint: body.keyFingerprint });

    const again = await issue(pki.station, { serialNumber: serial, csr, productLine: 'widget' });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text).certificate).toBe(body.certificate);

    const report = await h.admin('GET', `/admin/factory/report?station=station-1&from=${new Date(Date.now() - 60_000).toISOString()}`);
    expect(report.status).toBe(200);
    expect(report.json.records.map((x: { serial: string }) => x.serial)).toContain(serial);
    const own = await h.client(pki.station).request('GET', '/factory/report');
    expect(JSON.parse(own.text).records.map((x: { serial: string }) => x.serial)).toContain(serial);

    // The freshly made device is one we made: it gets a voucher (product line default policy first-use).
    const pledge: Pledge = { serial, idevid: { cert, signer: signer.withCertificates([cert, pki.vendor.cert]), keyPem: '' } };
    const pvr = await buildPvr('cose', pledge, pki.domainA.registrar);
    const v = await h.client(pki.domainA.registrar).post('/.well-known/brski/requestvoucher',
      await buildRvr('cose', pledge, pki.domainA, pvr), VOUCHER_MEDIA_TYPE.cose);
    expect(v.status, v.text).toBe(200);
  });

  it('clone attempt (issued serial, different key) → 409 clone-detected, alerted, record unchanged', async () => {
    const serial = newSerial();
    expect((await issue(pki.station, { serialNumber: serial, csr: (await csrFor(serial)).csr })).status).toBe(201);
    const before = await h.store.getDevice(serial);
    const r = await issue(pki.station, { serialNumber: serial, csr: (await csrFor(serial)).csr });
    expect(r.status, r.text).toBe(409);
    expect(r.text).toContain('clone-detected');
    expect(h.logs.some((l) => l['alert'] === 'clone-attempt' && l['serial'] === serial)).toBe(true);
    expect(await h.store.getDevice(serial)).toEqual(before);
  });

  it('expired station credential → 403 certificate-expired, nothing stored', async () => {
    const serial = newSerial();
    await refused(await issue(pki.expiredStation, { serialNumber: serial, csr: (await csrFor(serial)).csr }), 403, 'certificate-expired', serial);
  });

  it('station over its rate limit → 429 with Retry-After, nothing stored', async () => {
    for (let i = 0; i < 2; i++) {
      const s = newSerial();
      expect((await issue(limited, { serialNumber: s, csr: (await csrFor(s)).csr })).status).toBe(201);
    }
    const serial = newSerial();
    const r = await issue(limited, { serialNumber: serial, csr: (await csrFor(serial)).csr });
    await refused(r, 429, 'rate-limited', serial);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('test station credentials are refused by a production MASA', async () => {
    const serial = newSerial();
    await refused(await issue(pki.testStation, { serialNumber: serial, csr: (await csrFor(serial)).csr }), 403, 'forbidden', serial);
  });

  it('CSR without proof of possession, or for another serial → 400 bad-csr', async () => {
    const serial = newSerial();
    const { csr } = await csrFor(serial);
    const der = Buffer.from(csr, 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0xff; // break the self-signature
    await refused(await issue(pki.station, { serialNumber: serial, csr: der.toString('base64') }), 400, 'bad-csr', serial);
    await refused(await issue(pki.station, { serialNumber: serial, csr: (await csrFor(newSerial())).csr }), 400, 'bad-csr', serial);
  });

  it('no client certificate → 401; garbage body → 400', async () => {
    const serial = newSerial();
    await refused(await h.client().post('/factory/idevid', JSON.stringify({ serialNumber: serial, csr: 'AA' }), 'application/json'),
      401, 'unauthenticated', serial);
    await refused(await h.client(pki.station).post('/factory/idevid', '{nope', 'application/json'), 400, 'malformed', serial);
  });
});

describe('factory in development mode', () => {
  it('accepts the test station CA', async () => {
    const h = await startMasa(pki, new MemoryMasaStore(), (raw) => { raw['mode'] = 'development'; });
    try {
      const serial = newSerial();
      const r = await h.client(pki.testStation).post('/factory/idevid',
        JSON.stringify({ serialNumber: serial, csr: (await csrFor(serial)).csr }), 'application/json');
      expect(r.status, r.text).toBe(201);
    } finally { await h.stop(); }
  });
});
