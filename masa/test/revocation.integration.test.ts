/**
 * CRL checking of the registrar's RVR signing chain (digest §2.1(d)3), over real HTTPS on both
 * stores: registrar certificates carry a CRL distribution point served by a small HTTP server in
 * the test. Revoked → 403; good → 200 (CRL fetched once, then cached); unreachable, wrongly signed
 * or expired CRL → 503 + Retry-After in `require` mode, 200 in `best-effort`. Certificates naming
 * only an OCSP responder are checked against a real `openssl ocsp` responder: good → 200, revoked →
 * 403, a responder signing with a key the CA never authorised or one that is down → 503.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { freePort } from '../../test/helpers/ports.ts';
import { startRedis, type RedisHandle } from '../../test/helpers/redis.ts';
import { MemoryMasaStore } from '../src/store/memory.ts';
import { RedisMasaStore } from '../src/store/redis.ts';
import type { MasaStore } from '../src/store/types.ts';
import { CrlServer, crlDistributionPointsExtension, issueCrl, ocspAiaExtension, registrarWith } from './helpers/crl.ts';
import { startMasa, type Harness } from './helpers/harness.ts';
import { OcspResponder } from './helpers/ocsp-responder.ts';
import { buildPvr, buildRvr, makePki, makePledge, root, type Party, type Pledge, type TestPki } from './helpers/pki.ts';
import { expectRefused, logsSince } from './helpers/refusal.ts';

const RV = '/.well-known/brski/requestvoucher';
const b64 = (b: Uint8Array | Buffer): string => Buffer.from(b).toString('base64');

interface Fixture {
  ca: Party; good: Party; revoked: Party; down: Party; wrongSigner: Party; expired: Party; ocspOnly: Party; shortCrl: Party;
  ocspGood: Party; ocspRevoked: Party; ocspRogue: Party;
}

let pki: TestPki;
let crls: CrlServer;
let responder: OcspResponder;
let rogue: OcspResponder;
let fx: Fixture;
let redis: RedisHandle;
let redisClient: Redis;

beforeAll(async () => {
  pki = await makePki();
  crls = await new CrlServer().start();
  const ca = await root('R Domain CA');
  const impostor = await root('R Domain CA'); // same name, another key
  const deadUrl = `http://127.0.0.1:${await freePort()}/ca.crl`; // nothing listens there
  const dp = (url: string) => [crlDistributionPointsExtension([url])];
  fx = {
    ca,
    good: await registrarWith(ca, 'R registrar good', dp(crls.url('/ca.crl'))),
    revoked: await registrarWith(ca, 'R registrar revoked', dp(crls.url('/ca.crl'))),
    down: await registrarWith(ca, 'R registrar crl-down', dp(deadUrl)),
    wrongSigner: await registrarWith(ca, 'R registrar wrong-signer', dp(crls.url('/impostor.crl'))),
    expired: await registrarWith(ca, 'R registrar expired-crl', dp(crls.url('/expired.crl'))),
    shortCrl: await registrarWith(ca, 'R registrar short-crl', dp(crls.url('/short.crl'))),
    ocspOnly: await registrarWith(ca, 'R registrar ocsp-only', [ocspAiaExtension('http://127.0.0.1:1/ocsp')]),
    ...await (async () => {
      const [okPort, roguePort] = [await freePort(), await freePort()];
      const aia = (port: number) => [ocspAiaExtension(`http://127.0.0.1:${port}`)];
      const parties = {
        ocspGood: await registrarWith(ca, 'R registrar ocsp good', aia(okPort)),
        ocspRevoked: await registrarWith(ca, 'R registrar ocsp revoked', aia(okPort)),
        ocspRogue: await registrarWith(ca, 'R registrar ocsp rogue', aia(roguePort)),
      };
      const entries = [{ cert: parties.ocspGood.cert }, { cert: parties.ocspRevoked.cert, revoked: true }, { cert: parties.ocspRogue.cert }];
      responder = await new OcspResponder().start(ca, ca, entries, okPort);
      rogue = await new OcspResponder().start(ca, impostor, entries, roguePort);
      return parties;
    })(),
  };
  crls.crls.set('/ca.crl', await issueCrl(ca, [fx.revoked.cert]));
  crls.crls.set('/impostor.crl', await issueCrl(impostor, []));
  crls.crls.set('/expired.crl', await issueCrl(ca, [], { thisUpdate: new Date(Date.now() - 2 * 86_400_000),
    nextUpdate: new Date(Date.now() - 86_400_000) }));
  // nextUpdate in 5 minutes: sooner than the nonceless lifetime (20 minutes by default).
  crls.crls.set('/short.crl', await issueCrl(ca, [], { nextUpdate: new Date(Date.now() + 5 * 60_000) }));
  redis = await startRedis();
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: 2 });
});
afterAll(async () => { await crls?.stop(); await responder?.stop(); await rogue?.stop(); await redisClient?.quit(); await redis?.stop(); });

const stores: Array<[string, () => MasaStore]> = [
  ['memory', () => new MemoryMasaStore()],
  ['redis', () => new RedisMasaStore(redisClient)],
];

describe.each(stores)('RVR chain revocation (%s store)', (_name, makeStore) => {
  let strict: Harness;
  let lenient: Harness;
  beforeAll(async () => {
    strict = await startMasa(pki, makeStore(), (raw) => { raw['revocation'] = { allowPrivateAddresses: true, retryAfterSeconds: 7 }; });
    lenient = await startMasa(pki, makeStore(), (raw) => { raw['revocation'] = { mode: 'best-effort', allowPrivateAddresses: true }; });
  });
  afterAll(async () => { await strict?.stop(); await lenient?.stop(); });

  async function registered(h: Harness): Promise<Pledge> {
    const p = await makePledge(pki);
    const r = await h.admin('PUT', `/admin/devices/${encodeURIComponent(p.serial)}`,
      { certificate: b64(p.idevid.cert.raw), productLine: 'widget', policy: 'open' });
    expect(r.status, r.text).toBe(201);
    return p;
  }

  async function ask(h: Harness, registrar: Party, p: Pledge) {
    const domain = { ca: fx.ca, registrar };
    const rvr = await buildRvr('jws', p, domain, await buildPvr('jws', p, registrar));
    return h.client(registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
  }

  it('registrar not on the CRL → 200; the CRL is fetched once and then served from the cache', async () => {
    const before = crls.hits.get('/ca.crl') ?? 0;
    const r1 = await ask(strict, fx.good, await registered(strict));
    expect(r1.status, r1.text).toBe(200);
    const r2 = await ask(strict, fx.good, await registered(strict));
    expect(r2.status, r2.text).toBe(200);
    expect((crls.hits.get('/ca.crl') ?? 0) - before).toBe(1);
  });

  it('revoked registrar → 403 certificate-revoked, in either mode', async () => {
    for (const h of [strict, lenient]) {
      const p = await registered(h);
      const r = await ask(h, fx.revoked, p);
      await expectRefused(h, r, 403, 'certificate-revoked', p.serial);
      expect(r.text).toContain('R registrar revoked');
      expect(r.text).toContain('keyCompromise');
    }
  });

  it('CRL server unreachable → 503 revocation-unavailable + Retry-After (require), 200 + warning (best-effort)', async () => {
    const p = await registered(strict);
    const r = await ask(strict, fx.down, p);
    await expectRefused(strict, r, 503, 'revocation-unavailable', p.serial);
    expect(r.headers['retry-after']).toBe('7');

    const q = await registered(lenient);
    const from = lenient.logs.length;
    const ok = await ask(lenient, fx.down, q);
    expect(ok.status, ok.text).toBe(200);
    expect(logsSince(lenient, from, 'revocation status unknown, request accepted')).toHaveLength(1);
  });

  it('CRL not signed by the issuing CA → 503 (require)', async () => {
    const p = await registered(strict);
    const r = await ask(strict, fx.wrongSigner, p);
    await expectRefused(strict, r, 503, 'revocation-unavailable', p.serial);
    expect(r.text).toContain('not signed by');
  });

  it('expired CRL (nextUpdate passed) → 503 (require)', async () => {
    const p = await registered(strict);
    const r = await ask(strict, fx.expired, p);
    await expectRefused(strict, r, 503, 'revocation-unavailable', p.serial);
    expect(r.text).toContain('expired');
  });

  it('a nonceless voucher expires no later than the CRL the registrar chain was checked against (digest §5.3)', async () => {
    const p = await registered(strict);
    const claim = await strict.admin('POST', `/admin/devices/${p.serial}/claims`, { domainCert: b64(fx.ca.cert.raw) });
    expect(claim.status, claim.text).toBe(200);
    expect((await strict.admin('PUT', `/admin/devices/${p.serial}/policy`, { policy: 'claimed' })).status).toBe(200);
    const crlNextUpdate = Date.now() + 5 * 60_000; // ± the seconds since beforeAll
    for (const [registrar, bounded] of [[fx.shortCrl, true], [fx.good, false]] as const) {
      const rvr = await buildRvr('jws', p, { ca: fx.ca, registrar }, null, { nonce: null });
      const r = await strict.client(registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
      expect(r.status, r.text).toBe(200);
      const payload = JSON.parse(Buffer.from(JSON.parse(r.text).payload, 'base64url').toString('utf8'));
      const expiresOn = Date.parse(payload['ietf-voucher:voucher']['expires-on']);
      if (bounded) expect(expiresOn).toBeLessThanOrEqual(crlNextUpdate);
      else expect(expiresOn).toBeGreaterThan(Date.now() + 15 * 60_000); // the 20-minute lifetime
    }
  });

  it('OCSP only, responder says good → 200; the answer is cached until its nextUpdate', async () => {
    const r1 = await ask(strict, fx.ocspGood, await registered(strict));
    expect(r1.status, r1.text).toBe(200);
    const queries = async () => Number(/masa_ocsp_queries_total\{[^}]*result="good"[^}]*\} (\d+)/.exec((await strict.client(fx.good).request('GET', '/metrics')).text)?.[1] ?? 0);
    const before = await queries();
    expect((await ask(strict, fx.ocspGood, await registered(strict))).status).toBe(200);
    expect(await queries()).toBe(before);
  });

  it('OCSP only, responder says revoked → 403 certificate-revoked, in either mode', async () => {
    for (const h of [strict, lenient]) {
      const p = await registered(h);
      const r = await ask(h, fx.ocspRevoked, p);
      await expectRefused(h, r, 403, 'certificate-revoked', p.serial);
      expect(r.text).toContain('(OCSP)');
    }
  });

  it('OCSP answer signed by a key the CA never authorised → 503 (require)', async () => {
    const p = await registered(strict);
    const r = await ask(strict, fx.ocspRogue, p);
    await expectRefused(strict, r, 503, 'revocation-unavailable', p.serial);
    expect(r.text).toContain('not signed by the issuer');
  });

  it('OCSP responder unreachable → 503 + Retry-After (require), 200 (best-effort)', async () => {
    const p = await registered(strict);
    const r = await ask(strict, fx.ocspOnly, p);
    await expectRefused(strict, r, 503, 'revocation-unavailable', p.serial);
    expect(r.text).toContain('OCSP');
    expect(r.headers['retry-after']).toBe('7');
    const ok = await ask(lenient, fx.ocspOnly, await registered(lenient));
    expect(ok.status, ok.text).toBe(200);
  });

  it('default configuration refuses CRL URLs on loopback addresses (SSRF guard) → 503', async () => {
    const h = await startMasa(pki, makeStore());
    try {
      const before = crls.hits.get('/ca.crl') ?? 0;
      const p = await registered(h);
      const r = await ask(h, fx.good, p);
      await expectRefused(h, r, 503, 'revocation-unavailable', p.serial);
      expect(r.text).toContain('private/loopback');
      expect(crls.hits.get('/ca.crl') ?? 0).toBe(before);
    } finally { await h.stop(); }
  });
});
