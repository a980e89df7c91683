/**
 * RVR freshness (created-on window → 403 stale-request; absent created-on accepted and logged) and
 * the RPK pin (voucher.pin registrar + a cBRSKI PVR naming the registrar by key → pinned-domain-pubk),
 * over real HTTPS on both stores.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEnvelope } from '@brski/shared/envelope/index';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { spkiDer } from '@brski/shared/pki/identity';
import { decodeVoucherCbor } from '@brski/shared/voucher/cbor';
import { decodeVoucherJson } from '@brski/shared/voucher/json';
import type { Voucher } from '@brski/shared/voucher/model';
import { useMasaTestWorld } from './helpers/world.ts';
import { startMasa, type Harness } from './helpers/harness.ts';
import { buildPvr, buildRvr, makePledge, type Pledge, type PvrOptions, type TestPki } from './helpers/pki.ts';
import { expectRefused, logsSince } from './helpers/refusal.ts';

const RV = '/.well-known/brski/requestvoucher';
const b64 = (b: Uint8Array | Buffer): string => Buffer.from(b).toString('base64');
const ago = (seconds: number): string => new Date(Date.now() - seconds * 1000).toISOString();

const world = useMasaTestWorld();
let pki: TestPki;
beforeAll(() => { pki = world.pki; });

async function openVoucher(format: VoucherFormat, body: Buffer): Promise<Voucher> {
  const env = await verifyEnvelope(format, new Uint8Array(body), { anchors: [pki.vendor.cert] });
  return (format === 'cose'
    ? decodeVoucherCbor<Voucher>(env.payload, { kind: 'voucher', strict: true })
    : decodeVoucherJson<Voucher>(env.payload, { kind: 'voucher', strict: true })).data;
}

const stores = world.stores;

describe.each(stores)('RVR freshness and RPK pin (%s store)', (_name, makeStore) => {
  let h: Harness; // defaults: 300 s age, 60 s future skew, pin domain-ca
  let pinRegistrar: Harness;
  beforeAll(async () => {
    h = await startMasa(pki, makeStore());
    pinRegistrar = await startMasa(pki, makeStore(), (raw) => { raw['voucher'] = { pin: 'registrar' }; });
  });
  afterAll(async () => { await h?.stop(); await pinRegistrar?.stop(); });

  async function registered(on: Harness): Promise<Pledge> {
    const p = await makePledge(pki);
    const r = await on.admin('PUT', `/admin/devices/${encodeURIComponent(p.serial)}`,
      { certificate: b64(p.idevid.cert.raw), productLine: 'widget', policy: 'open' });
    expect(r.status, r.text).toBe(201);
    return p;
  }

  async function ask(on: Harness, format: VoucherFormat, p: Pledge, createdOn?: string | null, pvrOpts: PvrOptions = {}) {
    const pvr = await buildPvr(format, p, pki.domainA.registrar, pvrOpts);
    const rvr = await buildRvr(format, p, pki.domainA, pvr, createdOn === undefined ? {} : { createdOn });
    return on.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE[format]);
  }

  describe('created-on window', () => {
    for (const format of ['jws', 'cose'] as const) {
      it(`${format}: created-on older than voucher.maxRvrAgeSeconds → 403 stale-request`, async () => {
        const p = await registered(h);
        const r = await ask(h, format, p, ago(301 + 60));
        await expectRefused(h, r, 403, 'stale-request', p.serial);
        expect(r.text).toMatch(/s old/);
      });
    }

    it('created-on beyond the future skew → 403 stale-request', async () => {
      const p = await registered(h);
      const r = await ask(h, 'cms', p, ago(-120));
      await expectRefused(h, r, 403, 'stale-request', p.serial);
      expect(r.text).toContain('in the future');
    });

    it('created-on inside the window (a little old, a little ahead) → 200', async () => {
      for (const createdOn of [ago(200), ago(-30)]) {
        const r = await ask(h, 'jws', await registered(h), createdOn);
        expect(r.status, r.text).toBe(200);
      }
    });

    it('no created-on (RFC 8995 registrar) → 200 and a log line', async () => {
      const from = h.logs.length;
      const p = await registered(h);
      const r = await ask(h, 'jws', p, null);
      expect(r.status, r.text).toBe(200);
      const lines = logsSince(h, from, 'voucher-request without created-on accepted (RFC 8995 registrar)');
      expect(lines).toHaveLength(1);
      expect(lines[0]!['serial']).toBe(p.serial);
    });

    it('the audit log is still served for an old RVR (the registrar re-posts the stored one, RFC 8995 §5.8)', async () => {
      const p = await registered(h);
      const pvr = await buildPvr('jws', p, pki.domainA.registrar);
      const c = h.client(pki.domainA.registrar);
      expect((await c.post(RV, await buildRvr('jws', p, pki.domainA, pvr), VOUCHER_MEDIA_TYPE.jws)).status).toBe(200);
      const old = await buildRvr('jws', p, pki.domainA, pvr, { createdOn: ago(86_400) });
      const log = await c.post('/.well-known/brski/requestauditlog', old, VOUCHER_MEDIA_TYPE.jws);
      expect(log.status, log.text).toBe(200);
      expect(JSON.parse(log.text).events).toHaveLength(1);
    });

    it('the window is configurable (voucher.maxRvrAgeSeconds)', async () => {
      const tight = await startMasa(pki, makeStore(), (raw) => { raw['voucher'] = { maxRvrAgeSeconds: 5 }; });
      try {
        const p = await registered(tight);
        await expectRefused(tight, await ask(tight, 'jws', p, ago(30)), 403, 'stale-request', p.serial);
        expect((await ask(tight, 'jws', p, ago(0))).status).toBe(200);
      } finally { await tight.stop(); }
    });
  });

  describe('RPK pin (voucher.pin: registrar)', () => {
    const registrarSpki = (): Buffer => Buffer.from(spkiDer(pki.domainA.registrar.cert));

    for (const proximity of ['pubk-sha256', 'pubk'] as const) {
      it(`COSE PVR with proximity-registrar-${proximity} → pinned-domain-pubk = registrar SPKI, no certificate pin`, async () => {
        const p = await registered(pinRegistrar);
        const r = await ask(pinRegistrar, 'cose', p, undefined, { proximity });
        expect(r.status, r.text).toBe(200);
        const v = await openVoucher('cose', r.body);
        expect(v.pinnedDomainCert).toBeUndefined();
        expect(Buffer.from(v.pinnedDomainPubk!).equals(registrarSpki())).toBe(true);
        expect((await pinRegistrar.store.readAudit(p.serial))).toHaveLength(1);
      });
    }

    it('voucher.rpkPin: false pins the registrar certificate for a pubk-sha256 PVR', async () => {
      const certPin = await startMasa(pki, makeStore(), (raw) => { raw['voucher'] = { pin: 'registrar', rpkPin: false }; });
      try {
        const r = await ask(certPin, 'cose', await registered(certPin), undefined, { proximity: 'pubk-sha256' });
        expect(r.status, r.text).toBe(200);
        const v = await openVoucher('cose', r.body);
        expect(v.pinnedDomainPubk).toBeUndefined();
        expect(Buffer.from(v.pinnedDomainCert!).equals(Buffer.from(pki.domainA.registrar.cert.raw))).toBe(true);
      } finally { await certPin.stop(); }
    });

    it('a PVR with proximity-registrar-cert still gets the registrar certificate pinned', async () => {
      const r = await ask(pinRegistrar, 'cose', await registered(pinRegistrar));
      expect(r.status, r.text).toBe(200);
      const v = await openVoucher('cose', r.body);
      expect(v.pinnedDomainPubk).toBeUndefined();
      expect(Buffer.from(v.pinnedDomainCert!).equals(Buffer.from(pki.domainA.registrar.cert.raw))).toBe(true);
    });

    it('default pin (domain-ca) pins the domain CA certificate even for a pubk-sha256 PVR', async () => {
      const r = await ask(h, 'cose', await registered(h), undefined, { proximity: 'pubk-sha256' });
      expect(r.status, r.text).toBe(200);
      const v = await openVoucher('cose', r.body);
      expect(v.pinnedDomainPubk).toBeUndefined();
      expect(Buffer.from(v.pinnedDomainCert!).equals(Buffer.from(pki.domainA.ca.cert.raw))).toBe(true);
    });

    it('pubk-sha256 naming another registrar → 403 proximity-mismatch, nothing stored', async () => {
      const p = await registered(pinRegistrar);
      const r = await ask(pinRegistrar, 'cose', p, undefined, { proximity: 'pubk-sha256', proximityCert: pki.domainB.registrar.cert });
      await expectRefused(pinRegistrar, r, 403, 'proximity-mismatch', p.serial);
    });
  });
});
