/**
 * cBRSKI over real DTLS + CoAP: discovery, COSE voucher through the registrar to the test MASA
 * (RVR contents checked), EST-coaps crts in three formats, sen/sren, telemetry, CoAP error codes.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectVoucherArtifact, verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { cborDecode } from '@brski/shared/voucher/cbor-codec';
import { createCsr } from '@brski/shared/pki/csr';
import { generateKeyPair } from '@brski/shared/pki/keys';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import type { Voucher } from '@brski/shared/voucher/model';
import { CoapsClient } from '@brski/pledge-sim/coaps/coap-client';
import { makePvr } from '../helpers/client.ts';
import { startCoapsWorld, type CoapsWorld } from './harness.ts';

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld(); }, 60_000);
afterAll(async () => { await w?.stop(); });

async function connect(index: number): Promise<CoapsClient> {
  const p = w.fx.pledges[index]!;
  return CoapsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem });
}

describe('cBRSKI resources over CoAPS', () => {
  it('advertises the brski and EST resources in /.well-known/core', async () => {
    const c = await connect(0);
    try {
      const all = await c.request({ method: 'GET', path: '/.well-known/core' });
      expect(all.code).toBe('2.05');
      expect(all.contentFormat).toBe(40);
      const brski = await c.request({ method: 'GET', path: '/.well-known/core', query: 'rt=brski*' });
      const links = brski.payload.toString();
      expect(links).toContain('</.well-known/brski/rv>;rt=brski.rv;ct=836');
      expect(links).toContain('rt=brski.vs');
      expect(links).not.toContain('ace.est');
      expect(all.payload.toString()).toContain('</.well-known/est/crts>;rt=ace.est.crts');
    } finally { c.close(); }
  });

  it('returns a COSE voucher for a COSE PVR with proximity-registrar-pubk-sha256, then enrolls', async () => {
    const p = w.fx.pledges[1]!;
    const c = await connect(1);
    try {
      // The pledge names the key it saw in DTLS.
      const registrarCert = c.dtls.serverCertificates[0]!;
      expect(registrarCert.raw.equals(w.fx.registrarCert.raw)).toBe(true);
      const { bytes: pvr, nonce } = await makePvr('cose', p.signer, p.serial, { registrarCert, proximity: 'pubk-sha256' });
      const r = await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: pvr, contentFormat: 836, accept: 836 });
      expect(r.code, r.payload.toString()).toBe('2.04');
      expect(r.contentFormat).toBe(836);
      const signer = new X509Certificate(w.fx.pem('masa-signer.pem'));
      const v = await verifyVoucherArtifact<Voucher>('cose', new Uint8Array(r.payload), {
        anchors: [new X509Certificate(w.fx.pem('manufacturer-ca.pem'))], signerCertificate: signer, kind: 'voucher', strict: false, role: 'voucher',
      });
      expect(v.decoded.data.serialNumber).toBe(p.serial);
      expect(Buffer.from(v.decoded.data.nonce!).equals(Buffer.from(nonce))).toBe(true);
      // Unprotected x5bag stripped before relaying (digest §6.3).
      expect(inspectVoucherArtifact('cose', new Uint8Array(r.payload), { strict: false }).envelope.embedded).toHaveLength(0);
      // The MASA got a COSE RVR whose bag holds the pledge's DTLS chain and our signing chain.
      const rvr = w.masa.lastRvr!;
      expect(rvr.format).toBe('cose');
      expect(rvr.embedded.some((e) => e.raw.equals(p.cert.raw))).toBe(true);
      expect(rvr.embedded.some((e) => e.raw.equals(w.fx.registrarCert.raw))).toBe(true);

      const vs = await c.request({ method: 'POST', path: '/.well-known/brski/vs', contentFormat: 60, payload: encodeStatusTelemetry({ version: 1, status: true }, 'cbor') });
      expect(vs.code, vs.payload.toString()).toBe('2.04');

      const key = generateKeyPair('P-256');
      const csr = await createCsr([['CN', p.serial], ['serialNumber', p.serial]], new SoftwareSigner(key.privateKey));
      const sen = await c.request({ method: 'POST', path: '/.well-known/est/sen', contentFormat: 286, accept: 287, payload: csr });
      expect(sen.code, sen.payload.toString()).toBe('2.04');
      expect(sen.contentFormat).toBe(287);
      const ldevid = new X509Certificate(sen.payload);
      expect(ldevid.checkIssued(w.fx.domainCa) && ldevid.verify(w.fx.domainCa.publicKey)).toBe(true);

      const es = await c.request({ method: 'POST', path: '/.well-known/brski/es', contentFormat: 60, payload: encodeStatusTelemetry({ version: 1, status: true }, 'cbor') });
      expect(es.code).toBe('2.04');
      const stored = await w.reg.store.getPledge(p.serial);
      expect(stored?.voucherStatus?.status).toBe(true);
      expect(stored?.enrollStatus?.status).toBe(true);
      expect(stored?.state).toBe('enrolled');
    } finally { c.close(); }
  });

  it('serves /crts as certs-only (281, default), a single cert (287) and multipart-core (62) with an ETag', async () => {
    const c = await connect(0);
    try {
      const d = await c.request({ method: 'GET', path: '/.well-known/est/crts' });
      expect(d.code).toBe('2.05');
      expect(d.contentFormat).toBe(281);
      expect(decodeCertsOnly(new Uint8Array(d.payload)).map((x) => x.fingerprint256)).toContain(w.fx.domainCa.fingerprint256);
      const one = await c.request({ method: 'GET', path: '/.well-known/est/crts', accept: 287 });
      expect(new X509Certificate(one.payload).fingerprint256).toBe(w.reg.ca.certificate.fingerprint256);
      const mp = await c.request({ method: 'GET', path: '/.well-known/est/crts', accept: 62 });
      const arr = cborDecode(new Uint8Array(mp.payload)) as unknown[];
      expect(arr[0]).toBe(287);
      expect(Buffer.from(arr[1] as Uint8Array).equals(w.reg.ca.certificate.raw)).toBe(true);
      const att = await c.request({ method: 'GET', path: '/.well-known/est/att' });
      expect(att.code).toBe('2.05');
      expect(att.contentFormat).toBe(285);
    } finally { c.close(); }
  });

  it('answers with the CoAP codes of digest §3.3', async () => {
    const p = w.fx.pledges[2]!;
    const c = await connect(2);
    try {
      expect((await c.request({ method: 'GET', path: '/.well-known/brski/nope' })).code).toBe('4.04');
      expect((await c.request({ method: 'GET', path: '/.well-known/brski/rv' })).code).toBe('4.05');
      expect((await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: Buffer.from('x'), contentFormat: 60 })).code).toBe('4.15');
      const { bytes: pvr } = await makePvr('cose', p.signer, p.serial, { registrarCert: w.fx.registrarCert, proximity: 'pubk' });
      expect((await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: pvr, contentFormat: 836, accept: 50 })).code).toBe('4.06');
      expect((await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: Buffer.from([0xd2, 0x84]), contentFormat: 836 })).code).toMatch(/^4\.0[03]$/);
      // sen before any voucher: refused.
      const key = generateKeyPair('P-256');
      const csr = await createCsr([['CN', p.serial]], new SoftwareSigner(key.privateKey));
      expect((await c.request({ method: 'POST', path: '/.well-known/est/sen', contentFormat: 286, payload: csr })).code).toBe('4.03');
      // Uri-Path-Abbrev 402 = /.well-known/brski/rv; an unknown value is 4.02, never 4.04.
      expect((await c.request({ method: 'POST', path: '', options: { '13': Buffer.from([0x01, 0x92]) }, payload: Buffer.from('x'), contentFormat: 60 })).code).toBe('4.15');
      expect((await c.request({ method: 'GET', path: '', options: { '13': Buffer.from([0x03, 0xe7]) } })).code).toBe('4.02');
      // 304 (skg) and 305 (skc) name resources this registrar does not serve: 4.02 as well, not 4.04.
      for (const v of [304, 305]) {
        expect((await c.request({ method: 'POST', path: '', options: { '13': Buffer.from([v >> 8, v & 0xff]) }, payload: Buffer.from('x'), contentFormat: 286 })).code).toBe('4.02');
      }
      // Short base path is the same resource.
      expect((await c.request({ method: 'POST', path: '/b/rv', payload: Buffer.from('x'), contentFormat: 60 })).code).toBe('4.15');
    } finally { c.close(); }
  });

  it('answers 4.01 and closes the session when the PVR names another registrar', async () => {
    const p = w.fx.pledges[3]!;
    const c = await connect(3);
    try {
      const other = await w.fx.foreignRegistrarCert();
      const { bytes: pvr } = await makePvr('cose', p.signer, p.serial, { registrarCert: other, proximity: 'pubk-sha256' });
      const r = await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: pvr, contentFormat: 836 });
      expect(r.code).toBe('4.01');
      await expect.poll(() => c.dtls.closed, { timeout: 5000 }).toBe(true);
    } finally { c.close(); }
  });

  it('5.03 + Max-Age while the MASA is unreachable', async () => {
    const p = w.fx.pledges[0]!;
    w.masa.mode = { kind: 'hang' };
    const c = await connect(0);
    try {
      const { bytes: pvr } = await makePvr('cose', p.signer, p.serial, { registrarCert: w.fx.registrarCert, proximity: 'pubk' });
      const r = await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: pvr, contentFormat: 836, timeoutMs: 20_000 });
      expect(r.code).toBe('5.03');
      expect(r.maxAge).toBeGreaterThan(0);
    } finally {
      c.close();
      w.masa.mode = { kind: 'ok' };
    }
  }, 30_000);

  it('ETag of /crts is stable and names the body', async () => {
    const c = await connect(1);
    try {
      const a = await c.request({ method: 'GET', path: '/.well-known/est/crts' });
      const b = await c.request({ method: 'GET', path: '/.well-known/est/crts' });
      expect(createHash('sha256').update(a.payload).digest('hex')).toBe(createHash('sha256').update(b.payload).digest('hex'));
    } finally { c.close(); }
  });
});
