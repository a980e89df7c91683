/**
 * DTLS server security properties: CertificateVerify is checked (proof of IDevID key
 * possession), client certificates are required (or, when optional, rv refuses without one),
 * stateless cookies (no session before the peer echoes one), garbage and truncated handshakes
 * leave no state behind, handshake/idle limits evict, CCM_8 and GCM both negotiate.
 */
import dgram from 'node:dgram';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoapsClient } from '@brski/pledge-sim/coaps/coap-client';
import { DtlsClient } from '@brski/pledge-sim/coaps/dtls-client';
import { createDtlsContext } from '../../src/coap/dtls-native.ts';
import { makePvr } from '../helpers/client.ts';
import { startCoapsWorld, type CoapsWorld } from './harness.ts';

let w: CoapsWorld;
beforeAll(async () => {
  w = await startCoapsWorld({ devices: 2, dtls: { handshakeTimeoutMs: 1500, idleTimeoutMs: 1500, maxHandshakes: 3 } });
}, 60_000);
afterAll(async () => { await w?.stop(); });

const otherKeyPem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function rawSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  return new Promise((r) => s.bind(0, '127.0.0.1', () => r(s)));
}
function nextDatagram(s: dgram.Socket, ms = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.off('message', on); resolve(undefined); }, ms);
    const on = (m: Buffer) => { clearTimeout(t); s.off('message', on); resolve(m); };
    s.on('message', on);
  });
}

describe('DTLS server', () => {
  it('accepts the IDevID with its own key, refuses the same certificate with CertificateVerify signed by another key', async () => {
    const p = w.fx.pledges[0]!;
    const ok = await DtlsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem });
    expect(ok.cipher).toMatch(/^TLS_ECDHE_ECDSA_WITH_AES_128_/);
    ok.close();
    const failedBefore = w.coaps.dtls.stats.handshakesFailed;
    await expect(DtlsClient.connect({
      host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem, unsafeCertificateVerifyKey: otherKeyPem(), handshakeTimeoutMs: 3000,
    })).rejects.toThrow(/handshake failed/);
    expect(w.coaps.dtls.stats.handshakesFailed).toBe(failedBefore + 1);
    await expect.poll(() => w.coaps.dtls.sessionCount).toBe(0);
  });

  it('refuses a client without a certificate (required by default)', async () => {
    await expect(DtlsClient.connect({ host: '127.0.0.1', port: w.port, certChain: '', key: '', handshakeTimeoutMs: 3000 }))
      .rejects.toThrow(/handshake failed/);
    await expect.poll(() => w.coaps.dtls.sessionCount).toBe(0);
  });

  it('negotiates TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 when the client offers only that, GCM when it offers only that', async () => {
    const p = w.fx.pledges[1]!;
    for (const [ciphers, name] of [['ECDHE-ECDSA-AES128-CCM8', 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8'], ['ECDHE-ECDSA-AES128-GCM-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256']] as const) {
      const c = await CoapsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem, ciphers });
      try {
        expect(c.dtls.cipher).toBe(name);
        expect((await c.request({ method: 'GET', path: '/.well-known/core' })).code).toBe('2.05');
      } finally { c.close(); }
    }
  });

  it('answers a ClientHello with a HelloVerifyRequest and keeps no state until the cookie comes back', async () => {
    const s = await rawSocket();
    try {
      const ctx = createDtlsContext({ server: false });
      const hello = ctx.connect().handshake().out[0]!;
      s.send(hello, w.port, '127.0.0.1');
      const hvr = await nextDatagram(s);
      expect(hvr?.[0]).toBe(22); // handshake record
      expect(hvr?.[13]).toBe(3); // hello_verify_request
      expect(w.coaps.dtls.sessionCount).toBe(0);
      // Spoofed-flood shape: many first ClientHellos from one source, no cookie echo, no state.
      for (let i = 0; i < 200; i++) s.send(hello, w.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 200));
      expect(w.coaps.dtls.sessionCount).toBe(0);
    } finally { s.close(); }
  });

  it('survives garbage datagrams without creating sessions', async () => {
    const s = await rawSocket();
    try {
      for (let i = 0; i < 300; i++) {
        const g = randomBytes(1 + (i % 200));
        if (i % 3 === 0) { g[0] = 22; if (g.length > 4) { g[3] = 0; g[4] = 0; } if (g.length > 13) g[13] = 1; } // looks like a ClientHello
        s.send(g, w.port, '127.0.0.1');
      }
      s.send(Buffer.alloc(0), w.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 300));
      expect(w.coaps.dtls.sessionCount).toBe(0);
      const p = w.fx.pledges[0]!;
      const c = await CoapsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem });
      expect((await c.request({ method: 'GET', path: '/.well-known/core' })).code).toBe('2.05');
      c.close();
    } finally { s.close(); }
  });

  it('drops truncated handshakes after the handshake timeout and bounds concurrent handshakes', async () => {
    const sockets: dgram.Socket[] = [];
    let answered = 0;
    try {
      for (let i = 0; i < 5; i++) {
        const s = await rawSocket();
        sockets.push(s);
        const session = createDtlsContext({ server: false }).connect();
        s.send(session.handshake().out[0]!, w.port, '127.0.0.1');
        const hvr = await nextDatagram(s);
        // Echo the cookie (second ClientHello), then vanish mid-handshake.
        for (const d of session.feed(hvr!).out) s.send(d, w.port, '127.0.0.1');
        if (await nextDatagram(s, 300)) answered++;
      }
      // maxHandshakes = 3: the server flight went to three peers, the other two got no state.
      expect(answered).toBe(3);
      expect(w.coaps.dtls.sessionCount).toBe(3);
      await expect.poll(() => w.coaps.dtls.sessionCount, { timeout: 5000 }).toBe(0);
      expect(w.coaps.dtls.handshakeCount).toBe(0);
    } finally { for (const s of sockets) s.close(); }
  });

  it('evicts idle sessions', async () => {
    const p = w.fx.pledges[1]!;
    const c = await DtlsClient.connect({ host: '127.0.0.1', port: w.port, certChain: w.chainPem(p), key: p.keyPem });
    expect(w.coaps.dtls.sessionCount).toBe(1);
    await expect.poll(() => w.coaps.dtls.sessionCount, { timeout: 5000 }).toBe(0);
    // The server said close_notify on eviction.
    await expect.poll(() => c.closed, { timeout: 2000 }).toBe(true);
  });
});

describe('DTLS server with optional client certificates', () => {
  let open: CoapsWorld;
  beforeAll(async () => { open = await startCoapsWorld({ devices: 1, dtls: { requireClientCert: false } }); }, 60_000);
  afterAll(async () => { await open?.stop(); });

  it('lets a certificate-less client discover but refuses rv and crts with 4.01', async () => {
    const c = await CoapsClient.connect({ host: '127.0.0.1', port: open.port, certChain: '', key: '' });
    try {
      expect((await c.request({ method: 'GET', path: '/.well-known/core' })).code).toBe('2.05');
      const p = open.fx.pledges[0]!;
      const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: open.fx.registrarCert, proximity: 'pubk-sha256' });
      expect((await c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: bytes, contentFormat: 836 })).code).toBe('4.01');
      expect((await c.request({ method: 'GET', path: '/.well-known/est/crts' })).code).toBe('4.01');
      expect(open.masa.calls).toBe(0);
    } finally { c.close(); }
  });
});
