/**
 * The MASA over real HTTPS with client certificates, against the memory store and a real Redis:
 * vouchers for every format and ownership policy (verified with the shared envelope code against
 * the manufacturer anchor, pin = requesting domain CA), the audit log, and one negative test per
 * check — each with its status, a text/plain reason, a log line and nothing stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder, Encoder, Tag } from 'cbor-x';
import { verifyEnvelope } from '@brski/shared/envelope/index';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { decodeVoucherCbor } from '@brski/shared/voucher/cbor';
import { decodeVoucherJson } from '@brski/shared/voucher/json';
import { idevidIssuerOf } from '@brski/shared/pki/identity';
import type { Voucher } from '@brski/shared/voucher/model';
import { verifyAuditChain } from '../src/store/audit-chain.ts';
import type { Reply } from './helpers/client.ts';
import { useMasaTestWorld } from './helpers/world.ts';
import { startMasa, type Harness } from './helpers/harness.ts';
import { buildPvr, buildRvr, makePledge, tamperSignedPayload, type Pledge, type TestPki } from './helpers/pki.ts';

const FORMATS: VoucherFormat[] = ['jws', 'cms', 'cose'];
const RV = '/.well-known/brski/requestvoucher';
const AL = '/.well-known/brski/requestauditlog';
const b64 = (b: Uint8Array | Buffer): string => Buffer.from(b).toString('base64');

const world = useMasaTestWorld();
let pki: TestPki;
beforeAll(() => { pki = world.pki; });

async function openVoucher(format: VoucherFormat, body: Buffer): Promise<{ v: Voucher; text: string }> {
  const env = await verifyEnvelope(format, new Uint8Array(body), { anchors: [pki.vendor.cert] });
  const decoded = format === 'cose'
    ? decodeVoucherCbor<Voucher>(env.payload, { kind: 'voucher', strict: true })
    : decodeVoucherJson<Voucher>(env.payload, { kind: 'voucher', strict: true });
  return { v: decoded.data, text: Buffer.from(env.payload).toString('utf8') };
}

const stores = world.stores;

describe.each(stores)('MASA over HTTPS (%s store)', (_name, makeStore) => {
  let h: Harness;
  beforeAll(async () => { h = await startMasa(pki, makeStore()); });
  afterAll(async () => { await h?.stop(); });

  async function registered(policy?: 'claimed' | 'first-use' | 'open'): Promise<Pledge> {
    const p = await makePledge(pki);
    const r = await h.admin('PUT', `/admin/devices/${encodeURIComponent(p.serial)}`, {
      certificate: b64(p.idevid.cert.raw), productLine: 'widget', ...(policy ? { policy } : {}) });
    expect(r.status, r.text).toBe(201);
    return p;
  }

  async function request(format: VoucherFormat, p: Pledge, opts: { accept?: string; domain?: 'A' | 'B' } = {}) {
    const domain = opts.domain === 'B' ? pki.domainB : pki.domainA;
    const pvr = await buildPvr(format, p, domain.registrar);
    const rvr = await buildRvr(format, p, domain, pvr);
    const reply = await h.client(domain.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE[format], opts.accept ? { accept: opts.accept } : {});
    return { pvr, rvr, reply };
  }

  /** A refusal: status, text/plain reason, a log line with the code, and nothing stored for the device. */
  async function expectRefused(reply: Reply, status: number, code: string, serial?: string): Promise<void> {
    expect(reply.status, reply.text).toBe(status);
    expect(reply.headers['content-type']).toMatch(/^text\/plain/);
    expect(reply.text).toContain(code);
    expect(h.logs.some((l) => l['code'] === code && l['msg'] === 'refused')).toBe(true);
    if (serial !== undefined) {
      expect(await h.store.readAudit(serial)).toEqual([]);
      expect((await h.store.getOwnership(serial)).firstUse).toBeUndefined();
    }
  }

  for (const format of FORMATS) {
    for (const policy of ['claimed', 'first-use', 'open'] as const) {
      it(`issues a ${format} voucher under policy ${policy}`, async () => {
        const p = await registered(policy);
        if (policy === 'claimed') {
          const c = await h.admin('POST', `/admin/devices/${p.serial}/claims`, { domainCert: b64(pki.domainA.ca.cert.raw) });
          expect(c.status, c.text).toBe(200);
        }
        const { pvr, reply } = await request(format, p);
        expect(reply.status, reply.text).toBe(200);
        expect(reply.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE[format]);
        const { v, text } = await openVoucher(format, reply.body);
        expect(v.serialNumber).toBe(p.serial);
        expect(Buffer.from(v.pinnedDomainCert!).equals(Buffer.from(pki.domainA.ca.cert.raw))).toBe(true);
        expect(Buffer.from(v.nonce!).equals(Buffer.from(pvr.nonce))).toBe(true);
        expect(v.expiresOn).toBeUndefined();
        expect(v.createdOn).toBeDefined();
        expect(v.assertion).toBe(policy === 'claimed' ? 'verified' : 'logged');
        if (format !== 'cose') expect(text).toContain(`"nonce":"${b64(pvr.nonce)}"`);
        const log = await h.store.readAudit(p.serial);
        expect(log).toHaveLength(1);
        expect(log[0]).toMatchObject({ assertion: v.assertion, format, nonce: b64(pvr.nonce) });
        expect(verifyAuditChain(log).ok).toBe(true);
        if (policy === 'first-use') expect((await h.store.getOwnership(p.serial)).firstUse).toBe(log[0]!.domainId);
      });
    }
  }

  it('answers in the Accept format when it differs from the request format', async () => {
    const p = await registered('open');
    const { reply } = await request('jws', p, { accept: VOUCHER_MEDIA_TYPE.cose });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE.cose);
    expect((await openVoucher('cose', reply.body)).v.serialNumber).toBe(p.serial);
  });

  for (const format of ['cms', 'jws'] as const) {
    it(`${format}: requests without embedded certificates (optional, digest §6.1) verify against the TLS client and the IDevID on record`, async () => {
      for (const [bareRvr, barePvr] of [[true, false], [false, true], [true, true]] as const) {
        const p = await registered('open');
        const pvr = await buildPvr(format, p, pki.domainA.registrar, { bare: barePvr });
        const rvr = await buildRvr(format, p, pki.domainA, pvr, { bare: bareRvr });
        const reply = await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE[format]);
        expect(reply.status, `RVR bare ${bareRvr}, PVR bare ${barePvr}: ${reply.text}`).toBe(200);
        const { v } = await openVoucher(format, reply.body);
        expect(v.serialNumber).toBe(p.serial);
        expect(Buffer.from(v.pinnedDomainCert!).equals(pki.domainA.ca.cert.raw)).toBe(true);
      }
    });

    if (format === 'cms') {
      it('cms: a PVR whose embedded IDevID copy was damaged in transit (unsigned bytes) verifies against the IDevID on record', async () => {
        const p = await registered('open');
        const pvr = await buildPvr('cms', p, pki.domainA.registrar);
        const at = Buffer.from(pvr.bytes).indexOf(p.idevid.cert.raw);
        expect(at).toBeGreaterThan(0);
        const damaged = new Uint8Array(pvr.bytes);
        damaged[at + p.idevid.cert.raw.length - 1]! ^= 0x01; // inside the certificate's own signature
        const reply = await h.client(pki.domainA.registrar).post(RV, await buildRvr('cms', p, pki.domainA, { ...pvr, bytes: damaged }),
          VOUCHER_MEDIA_TYPE.cms);
        expect(reply.status, reply.text).toBe(200);
        expect((await openVoucher('cms', reply.body)).v.serialNumber).toBe(p.serial);
      });
    }

    it(`${format}: a bare RVR signed by someone other than the TLS client, or a bare PVR not signed by the IDevID on record → 403`, async () => {
      const p = await registered('open');
      const stranger = await makePledge(pki);
      // RVR signed by domain B's registrar, sent over domain A's TLS client certificate.
      const rvrB = await buildRvr(format, p, pki.domainB, await buildPvr(format, p, pki.domainB.registrar), { bare: true });
      const r1 = await h.client(pki.domainA.registrar).post(RV, rvrB, VOUCHER_MEDIA_TYPE[format]);
      expect(r1.status, r1.text).toBe(403);
      // PVR signed by another device's key, claiming p's serial, carrying no certificate.
      const forged = await buildPvr(format, { ...stranger, serial: p.serial }, pki.domainA.registrar, { bare: true });
      const r2 = await h.client(pki.domainA.registrar).post(RV, await buildRvr(format, p, pki.domainA, forged), VOUCHER_MEDIA_TYPE[format]);
      expect(r2.status, r2.text).toBe(403);
      expect(await h.store.readAudit(p.serial)).toEqual([]);
    });
  }

  it('Accept weights: parameter names are case-insensitive and the most specific range wins (RFC 9110 §12.5.1)', async () => {
    for (const [accept, expected] of [
      [`${VOUCHER_MEDIA_TYPE.cms};Q=0.1, ${VOUCHER_MEDIA_TYPE.jws};q=0.5`, 'jws'],
      [`${VOUCHER_MEDIA_TYPE.cms};q=0, */*;q=0.9, ${VOUCHER_MEDIA_TYPE.cose};q=0.1`, 'jws'],
    ] as const) {
      const { reply } = await request('cms', await registered('open'), { accept });
      expect(reply.status, reply.text).toBe(200);
      expect(reply.headers['content-type'], accept).toBe(VOUCHER_MEDIA_TYPE[expected]);
    }
  });

  it('serves the audit log to the owner (same RVR) and 404 to others', async () => {
    const p = await registered('open');
    const { rvr, reply } = await request('jws', p);
    expect(reply.status).toBe(200);
    const log = await h.client(pki.domainA.registrar).post(AL, rvr, VOUCHER_MEDIA_TYPE.jws);
    expect(log.status, log.text).toBe(200);
    expect(log.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(log.text);
    expect(body.version).toBe(1);
    expect(body.events).toHaveLength(1);
    expect(body.events[0]).toMatchObject({ assertion: 'logged', domainID: (await h.store.readAudit(p.serial))[0]!.domainId });
    const pvrB = await buildPvr('jws', p, pki.domainB.registrar);
    const rvrB = await buildRvr('jws', p, pki.domainB, pvrB);
    const other = await h.client(pki.domainB.registrar).post(AL, rvrB, VOUCHER_MEDIA_TYPE.jws);
    expect(other.status, other.text).toBe(404);
  });

  it('COSE: an x5bag inside the PVR is ignored, even one that holds no certificate (digest §6.3)', async () => {
    const p = await registered('open');
    const pvr = await buildPvr('cose', p, pki.domainA.registrar);
    const tagged = new Decoder({ mapsAsObjects: false }).decode(pvr.bytes) as Tag;
    const [prot, , body, sig] = tagged.value as [Uint8Array, unknown, Uint8Array, Uint8Array];
    const withJunk = new Encoder({ mapsAsObjects: false, useRecords: false })
      .encode(new Tag([Buffer.from(prot), new Map([[32, Buffer.of(1, 2, 3)]]), Buffer.from(body), Buffer.from(sig)], 18)); // Buffer: bstr
    const reply = await h.client(pki.domainA.registrar).post(RV, await buildRvr('cose', p, pki.domainA, { bytes: new Uint8Array(withJunk), nonce: pvr.nonce }), VOUCHER_MEDIA_TYPE.cose);
    expect(reply.status, reply.text).toBe(200);
  });

  it('nonceless: voucher with expires-on for a claimed device, refused for an unclaimed one', async () => {
    const p = await registered('claimed');
    await h.admin('POST', `/admin/devices/${p.serial}/claims`, { domainCert: b64(pki.domainA.ca.cert.raw) });
    const rvr = await buildRvr('jws', p, pki.domainA, null);
    const ok = await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
    expect(ok.status, ok.text).toBe(200);
    const { v } = await openVoucher('jws', ok.body);
    expect(v.nonce).toBeUndefined();
    expect(Date.parse(v.expiresOn!)).toBeGreaterThan(Date.now());
    expect((await h.store.readAudit(p.serial))[0]!.nonce).toBeNull();

    const q = await registered('open');
    const refused = await h.client(pki.domainA.registrar).post(RV, await buildRvr('jws', q, pki.domainA, null), VOUCHER_MEDIA_TYPE.jws);
    await expectRefused(refused, 403, 'forbidden', q.serial);
  });

  describe('refusals (one per check)', () => {
    it('tampered RVR → 403 bad-signature', async () => {
      const p = await registered('open');
      for (const format of FORMATS) {
        const rvr = tamperSignedPayload(format, await buildRvr(format, p, pki.domainA, await buildPvr(format, p, pki.domainA.registrar)));
        await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE[format]), 403, 'bad-signature', p.serial);
      }
    });

    it('tampered embedded PVR → 403 bad-signature', async () => {
      const p = await registered('open');
      for (const format of FORMATS) {
        const pvr = await buildPvr(format, p, pki.domainA.registrar, { tamper: true });
        const rvr = await buildRvr(format, p, pki.domainA, pvr);
        const r = await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE[format]);
        await expectRefused(r, 403, 'bad-signature', p.serial);
        expect(r.text).toContain('prior-signed-voucher-request');
      }
    });

    it('RVR signed by a certificate other than the TLS client → 403 signer-mismatch', async () => {
      const p = await registered('open');
      const rvr = await buildRvr('jws', p, pki.domainB, await buildPvr('jws', p, pki.domainB.registrar));
      await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws), 403, 'signer-mismatch', p.serial);
    });

    it('serial mismatch → 403 serial-mismatch', async () => {
      const p = await registered('open'); const other = await registered('open');
      const rvr = await buildRvr('jws', p, pki.domainA, await buildPvr('jws', p, pki.domainA.registrar), { serial: other.serial });
      await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws), 403, 'serial-mismatch', other.serial);
    });

    it('idevid-issuer mismatch → 403 issuer-mismatch', async () => {
      const p = await registered('open');
      const bogus = Uint8Array.from([0x04, 0x18, 0x30, 0x16, 0x80, 0x14, ...new Uint8Array(20).fill(7)]);
      const rvr = await buildRvr('cms', p, pki.domainA, await buildPvr('cms', p, pki.domainA.registrar), { idevidIssuer: bogus });
      await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.cms), 403, 'issuer-mismatch', p.serial);
    });

    it('nonce mismatch → 403 nonce-mismatch', async () => {
      const p = await registered('open');
      const rvr = await buildRvr('cose', p, pki.domainA, await buildPvr('cose', p, pki.domainA.registrar), { nonce: new Uint8Array(16).fill(1) });
      await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.cose), 403, 'nonce-mismatch', p.serial);
    });

    it('proximity mismatch (pledge saw another registrar) → 403 proximity-mismatch', async () => {
      const p = await registered('open');
      const pvr = await buildPvr('jws', p, pki.domainA.registrar, { proximityCert: pki.domainB.registrar.cert });
      const rvr = await buildRvr('jws', p, pki.domainA, pvr);
      await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws), 403, 'proximity-mismatch', p.serial);
    });

    it('unknown device → 404 unknown-device', async () => {
      const p = await makePledge(pki);
      const rvr = await buildRvr('jws', p, pki.domainA, await buildPvr('jws', p, pki.domainA.registrar));
      await expectRefused(await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws), 404, 'unknown-device', p.serial);
      expect(await h.store.getDevice(p.serial)).toBeUndefined();
    });

    it('revoked device → 403 device-revoked', async () => {
      const p = await registered('open');
      expect((await h.admin('POST', `/admin/devices/${p.serial}/revoke`, { reason: 'stolen' })).status).toBe(200);
      await expectRefused((await request('jws', p)).reply, 403, 'device-revoked', p.serial);
    });

    it('claimed by another domain → 403 claimed-by-other-domain (sales record and first use)', async () => {
      const p = await registered('claimed');
      await h.admin('POST', `/admin/devices/${p.serial}/claims`, { domainCert: b64(pki.domainB.ca.cert.raw) });
      await expectRefused((await request('jws', p)).reply, 403, 'claimed-by-other-domain', p.serial);

      const q = await registered('first-use');
      expect((await request('jws', q, { domain: 'B' })).reply.status).toBe(200);
      const r = (await request('jws', q)).reply;
      expect(r.status).toBe(403);
      expect(r.text).toContain('claimed-by-other-domain');
      expect(await h.store.readAudit(q.serial)).toHaveLength(1); // only B's voucher
    });

    it('replayed nonce → 403 replayed-nonce, logged once', async () => {
      const p = await registered('open');
      const { rvr, reply } = await request('jws', p);
      expect(reply.status).toBe(200);
      const again = await h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
      await expectRefused(again, 403, 'replayed-nonce');
      expect(await h.store.readAudit(p.serial)).toHaveLength(1);
    });

    it('unsupported Content-Type → 415; Accept naming no voucher type → 415; unsatisfiable Accept → 406; oversized → 413; garbage → 400', async () => {
      const p = await registered('open');
      const pvr = await buildPvr('jws', p, pki.domainA.registrar);
      const rvr = await buildRvr('jws', p, pki.domainA, pvr);
      const c = h.client(pki.domainA.registrar);
      await expectRefused(await c.post(RV, rvr, 'application/json'), 415, 'unsupported-media-type', p.serial);
      // Digest §3.3 (RFC 8995 §5.6): 415 for an Accept value not understood, 406 for voucher types the MASA cannot issue.
      await expectRefused(await c.post(RV, rvr, VOUCHER_MEDIA_TYPE.jws, { accept: 'application/pkcs7-mime' }), 415, 'unsupported-media-type', p.serial);
      for (const accept of [`${VOUCHER_MEDIA_TYPE.jws};q=0, ${VOUCHER_MEDIA_TYPE.cms};Q=0, ${VOUCHER_MEDIA_TYPE.cose};q=0`,
        // RFC 9110 §12.5.1: the most specific range wins, so the wildcard does not bring JWS back.
        `${VOUCHER_MEDIA_TYPE.jws};q=0, ${VOUCHER_MEDIA_TYPE.cms};q=0, ${VOUCHER_MEDIA_TYPE.cose};q=0, */*`]) {
        await expectRefused(await c.post(RV, rvr, VOUCHER_MEDIA_TYPE.jws, { accept }), 406, 'not-acceptable', p.serial);
      }
      await expectRefused(await c.post(RV, new Uint8Array(200 * 1024), VOUCHER_MEDIA_TYPE.jws), 413, 'too-large', p.serial);
      await expectRefused(await c.post(RV, 'this is not a voucher-request', VOUCHER_MEDIA_TYPE.jws), 400, 'malformed', p.serial);
      // the good request still works afterwards: nothing was consumed
      expect((await c.post(RV, rvr, VOUCHER_MEDIA_TYPE.jws)).status).toBe(200);
    });

    it('no TLS client certificate → 401', async () => {
      const p = await registered('open');
      const rvr = await buildRvr('jws', p, pki.domainA, await buildPvr('jws', p, pki.domainA.registrar));
      await expectRefused(await h.client().post(RV, rvr, VOUCHER_MEDIA_TYPE.jws), 401, 'unauthenticated', p.serial);
    });
  });

  it('health and metrics', async () => {
    const c = h.client();
    expect((await c.request('GET', '/healthz')).status).toBe(200);
    const m = await c.request('GET', '/metrics');
    expect(m.text).toContain('masa_vouchers_issued_total');
    expect(m.text).toMatch(/brski_refusals_total\{[^}]*reason="replayed-nonce"/);
  });
});

describe('voucher.includeIdevidIssuer (digest §8.4, §11 #4)', () => {
  let h: Harness;
  beforeAll(async () => { h = await startMasa(pki, stores[0]![1](), (raw) => { raw['voucher'] = { ...raw['voucher'], includeIdevidIssuer: true }; }); });
  afterAll(async () => { await h?.stop(); });

  async function claimedPledge(): Promise<Pledge> {
    const p = await makePledge(pki);
    expect((await h.admin('PUT', `/admin/devices/${encodeURIComponent(p.serial)}`, { certificate: b64(p.idevid.cert.raw), productLine: 'widget', policy: 'claimed' })).status).toBe(201);
    expect((await h.admin('POST', `/admin/devices/${p.serial}/claims`, { domainCert: b64(pki.domainA.ca.cert.raw) })).status).toBe(200);
    return p;
  }
  /** `04 18 30 16 80 14 <key id>` → `30 16 80 14 <key id>`: the bare SEQUENCE form some registrars send. */
  const bare = (canonical: Uint8Array) => canonical.subarray(2);

  it('the voucher carries the canonical OCTET STRING form even when the registrar sent the bare SEQUENCE', async () => {
    const p = await claimedPledge();
    const canonical = idevidIssuerOf(p.idevid.cert);
    expect(canonical[0]).toBe(0x04);
    const pvr = await buildPvr('jws', p, pki.domainA.registrar);
    const reply = await h.client(pki.domainA.registrar).post(RV, await buildRvr('jws', p, pki.domainA, pvr, { idevidIssuer: bare(canonical) }), VOUCHER_MEDIA_TYPE.jws);
    expect(reply.status, reply.text).toBe(200);
    expect(b64((await openVoucher('jws', reply.body)).v.idevidIssuer!)).toBe(b64(canonical));
  });

  it('nonceless: the RVR idevid-issuer is checked against the device record; a wrong one is 403 issuer-mismatch, nothing stored', async () => {
    const p = await claimedPledge();
    const canonical = idevidIssuerOf(p.idevid.cert);
    const ok = await h.client(pki.domainA.registrar).post(RV, await buildRvr('jws', p, pki.domainA, null, { idevidIssuer: bare(canonical) }), VOUCHER_MEDIA_TYPE.jws);
    expect(ok.status, ok.text).toBe(200);
    expect(b64((await openVoucher('jws', ok.body)).v.idevidIssuer!)).toBe(b64(canonical));

    const q = await claimedPledge();
    const wrong = Uint8Array.from(idevidIssuerOf(q.idevid.cert));
    wrong[wrong.length - 1]! ^= 0xff;
    const refused = await h.client(pki.domainA.registrar).post(RV, await buildRvr('jws', q, pki.domainA, null, { idevidIssuer: wrong }), VOUCHER_MEDIA_TYPE.jws);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.text).toContain('issuer-mismatch');
    expect(await h.store.readAudit(q.serial)).toEqual([]);
  });
});
