/**
 * Block-wise uploads (RFC 7959 Block1) over CoAPS: a PVR and a CSR too large for one message are
 * reassembled by the registrar and processed like small ones; an upload over the body limit is
 * refused with 4.13; a malformed block sequence is answered 4.08 and does not hurt
 * the session (its delayed empty ACK once crashed the registrar when the peer had left). The
 * client splits anything over BLOCK1_BYTES (512) — the tests check the wire.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { parse, type ParsedPacket, generate } from 'coap-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signVoucherArtifact } from '@brski/shared/envelope/artifact';
import { createCsr } from '@brski/shared/pki/csr';
import { generateKeyPair } from '@brski/shared/pki/keys';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { spkiDer } from '@brski/shared/pki/identity';
import type { VoucherRequest } from '@brski/shared/voucher/model';
import { BLOCK1_BYTES, CoapsClient } from '@brski/pledge-sim/coaps/coap-client';
import { startCoapsWorld, type CoapsWorld } from './harness.ts';

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld({ devices: 4 }); }, 60_000);
afterAll(async () => { await w?.stop(); });

/** A client whose outgoing CoAP messages (plaintext, before DTLS) are recorded. */
async function connect(index: number): Promise<{ c: CoapsClient; sent: ParsedPacket[] }> {
  const p = w.fx.pledges[index]!;
  const c = await CoapsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem });
  const sent: ParsedPacket[] = [];
  const send = c.dtls.send.bind(c.dtls);
  c.dtls.send = (d: Buffer) => { sent.push(parse(d)); send(d); };
  return { c, sent };
}

const block1Of = (pkts: ParsedPacket[]) => pkts.filter((x) => x.options.some((o) => o.name === 'Block1'));

/** A COSE PVR of `serial` over the registrar key; `bag` certificates in the unprotected x5bag make it big. */
async function pvr(index: number, registrarCert: X509Certificate, bag: X509Certificate[]): Promise<Uint8Array> {
  const p = w.fx.pledges[index]!;
  const data: VoucherRequest = {
    assertion: 'proximity', nonce: new Uint8Array(randomBytes(16)), serialNumber: p.serial, createdOn: new Date().toISOString(),
    proximityRegistrarPubkSha256: new Uint8Array(await crypto.subtle.digest('SHA-256', spkiDer(registrarCert))),
  };
  return signVoucherArtifact('cose', 'voucher-request', data, p.signer, { unprotectedX5bag: bag });
}

describe('Block1 uploads over CoAPS', () => {
  it('a PVR over one block is reassembled; the registrar ignores its unprotected x5bag and answers with a voucher', async () => {
    const { c, sent } = await connect(0);
    try {
      const bag = [w.fx.pledges[0]!.cert, new X509Certificate(w.fx.pem('idevid-ca.pem')), new X509Certificate(w.fx.pem('manufacturer-ca.pem'))];
      const body = await pvr(0, c.dtls.serverCertificates[0]!, bag);
      expect(body.length).toBeGreaterThan(2 * BLOCK1_BYTES);
      const r = await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: body, contentFormat: 836 });
      expect(r.code, r.payload.toString()).toBe('2.04');
      expect(r.contentFormat).toBe(836);
      const blocks = block1Of(sent);
      expect(blocks.length).toBe(Math.ceil(body.length / BLOCK1_BYTES));
      expect(blocks.every((b) => (b.payload?.length ?? 0) <= BLOCK1_BYTES)).toBe(true);
      // The MASA received the pledge's signed PVR unchanged (prior-signed-voucher-request), bag and all.
      expect(w.masa.lastRvr?.format).toBe('cose');
    } finally { c.close(); }
  });

  it('a CSR over one block enrolls (sen), and the LDevID certifies the CSR key', async () => {
    const { c, sent } = await connect(1);
    const p = w.fx.pledges[1]!;
    try {
      const v = await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: await pvr(1, c.dtls.serverCertificates[0]!, []), contentFormat: 836 });
      expect(v.code, v.payload.toString()).toBe('2.04');
      const key = generateKeyPair('P-256');
      // 40 DNS names make the CSR ~1.5 kB; the CA takes the subject and SAN from its profile, not from here.
      const dns = Array.from({ length: 40 }, (_, i) => `device-${i}.${p.serial.toLowerCase()}.block1.example`);
      const csr = await createCsr([['CN', p.serial], ['serialNumber', p.serial]], new SoftwareSigner(key.privateKey), { subjectAltName: { dns } });
      expect(csr.length).toBeGreaterThan(2 * BLOCK1_BYTES);
      sent.length = 0;
      const r = await c.request({ method: 'POST', path: '/.well-known/est/sen', contentFormat: 286, accept: 287, payload: csr });
      expect(r.code, r.payload.toString()).toBe('2.04');
      expect(block1Of(sent).length).toBe(Math.ceil(csr.length / BLOCK1_BYTES));
      const ldevid = new X509Certificate(r.payload);
      expect(Buffer.from(spkiDer(ldevid)).equals(Buffer.from(spkiDer(key.publicKey)))).toBe(true);
      expect(ldevid.verify(w.reg.ca.certificate.publicKey)).toBe(true);
    } finally { c.close(); }
  });

  it('a Block1 upload over the registrar body limit is refused with 4.13', async () => {
    const { c } = await connect(2);
    try {
      const big = randomBytes(w.reg.config.limits.bodyBytes + 1);
      const r = await c.request({ method: 'POST', path: '/.well-known/est/sen', contentFormat: 286, payload: big, timeoutMs: 60_000 });
      expect(r.code).toBe('4.13');
      // A small request right after is served normally.
      expect((await c.request({ method: 'GET', path: '/.well-known/core' })).code).toBe('2.05');
    } finally { c.close(); }
  }, 90_000);

  it('a last block without its predecessors is answered 4.08 (RFC 7959 §2.9.2) and leaves the session usable', async () => {
    const { c } = await connect(3);
    try {
      // Block1 NUM=1, M=0, SZX=5 (512 bytes), with no block 0 before it.
      const orphan = generate({
        confirmable: true, messageId: 4242, token: Buffer.from('0badb10c', 'hex'), code: '0.02',
        options: [{ name: 'Uri-Path', value: Buffer.from('.well-known') }, { name: 'Uri-Path', value: Buffer.from('est') },
          { name: 'Uri-Path', value: Buffer.from('sen') }, { name: 'Block1', value: Buffer.of((1 << 4) | 5) }],
        payload: randomBytes(100),
      });
      const answer = new Promise<ParsedPacket>((resolve) => c.dtls.on('message', (m: Buffer) => {
        const p = parse(m);
        if (p.token.equals(Buffer.from('0badb10c', 'hex'))) resolve(p);
      }));
      c.dtls.send(orphan);
      expect((await answer).code).toBe('4.08');
      const r = await c.request({ method: 'GET', path: '/.well-known/core' });
      expect(r.code).toBe('2.05');
      expect(w.coaps.dtls.sessionCount).toBeGreaterThan(0);
    } finally { c.close(); }
    await expect.poll(() => w.coaps.dtls.sessionCount).toBe(0);
  });

  it('a peer that leaves before its separate answer does not take the registrar down', async () => {
    w.masa.mode = { kind: 'hang' };
    try {
      const { c } = await connect(0);
      const body = await pvr(0, c.dtls.serverCertificates[0]!, []);
      // The answer (5.03 once the MASA times out) will be a separate CON response to a gone peer.
      void c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: body, contentFormat: 836, timeoutMs: 500 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      c.close();
      await expect.poll(() => w.coaps.dtls.sessionCount).toBe(0);
      await new Promise((r) => setTimeout(r, 3000)); // past the registrar's MASA timeout: the answer is sent into the void
    } finally { w.masa.mode = { kind: 'ok' }; }
    const { c } = await connect(1);
    try {
      expect((await c.request({ method: 'GET', path: '/.well-known/core' })).code).toBe('2.05');
    } finally { c.close(); }
  }, 20_000);
});
