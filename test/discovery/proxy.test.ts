/**
 * The join proxy relays TLS without terminating it (RFC 8995 §4.1): the bytes it handles are TLS
 * records only, the HTTP request and response never appear in them, and the client sees the
 * server's certificate (and the server the client's) end to end.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server as TcpServer } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJoinProxy, type JoinProxy } from '../../join-proxy/src/proxy.ts';
import type { Direction } from '../../join-proxy/src/circuit.ts';
import { makeTlsFixture, type TlsFixture } from './tls-fixture.ts';

const REQUEST_MARKER = 'x-pvr-secret-7f3a9c';
const RESPONSE_MARKER = 'voucher-body-c41d2e';

/** Independent of the proxy's framer: the whole stream must be a sequence of well-formed TLS records. */
function parseTlsRecords(stream: Buffer): number[] {
  const types: number[] = [];
  let i = 0;
  while (i < stream.length) {
    expect(stream.length - i, 'truncated record header').toBeGreaterThanOrEqual(5);
    const type = stream[i]!;
    expect([0x14, 0x15, 0x16, 0x17]).toContain(type);
    expect(stream[i + 1], 'record version major').toBe(3);
    const len = stream.readUInt16BE(i + 3);
    i += 5 + len;
    expect(i, 'record body runs past the stream').toBeLessThanOrEqual(stream.length);
    types.push(type);
  }
  return types;
}

describe('join proxy: TLS circuit relay', () => {
  let pki: TlsFixture;
  let server: HttpsServer;
  let serverPort: number;
  let proxy: JoinProxy;
  const seen: Record<Direction, Buffer[]> = { 'to-registrar': [], 'to-pledge': [] };
  const clientCertsSeenByServer: string[] = [];
  const requestsSeenByServer: string[] = [];

  beforeAll(async () => {
    pki = await makeTlsFixture();
    server = createHttpsServer({ key: pki.server.keyPem, cert: pki.server.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        clientCertsSeenByServer.push(peer.fingerprint256 ?? '');
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => {
          requestsSeenByServer.push(`${req.method} ${req.url} ${req.headers[REQUEST_MARKER] ?? ''} ${Buffer.concat(parts).toString()}`);
          res.setHeader('content-type', 'text/plain');
          res.end(`${RESPONSE_MARKER} for ${req.url}`);
        });
      });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as AddressInfo).port;
    proxy = createJoinProxy({
      listen: { host: '127.0.0.1', port: 0 }, registrar: { host: '127.0.0.1', port: serverPort }, announce: false,
      tap: (dir, bytes) => seen[dir].push(Buffer.from(bytes)),
    });
    await proxy.start();
  });

  afterAll(async () => {
    await proxy?.stop();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  it('relays a mutually authenticated HTTPS exchange end to end and only ever handles TLS records', async () => {
    const sock = tlsConnect({
      host: '127.0.0.1', port: proxy.port, ca: pki.caPem, key: pki.client.keyPem, cert: pki.client.certPem,
      checkServerIdentity: () => undefined, minVersion: 'TLSv1.2',
    });
    await new Promise<void>((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); });
    // The certificate the client authenticated is the server's own: the proxy did not terminate TLS.
    const peer = new X509Certificate(sock.getPeerCertificate(true).raw);
    expect(peer.fingerprint256).toBe(pki.server.cert.fingerprint256);
    expect(sock.authorized).toBe(true);

    const body = `pledge-voucher-request ${REQUEST_MARKER}`;
    sock.write(`POST /.well-known/brski/requestvoucher HTTP/1.1\r\nHost: registrar\r\n${REQUEST_MARKER}: yes\r\n`
      + `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    await new Promise<void>((r) => sock.once('end', r));
    sock.destroy();
    const response = Buffer.concat(chunks).toString();
    expect(response).toContain('HTTP/1.1 200');
    expect(response).toContain(RESPONSE_MARKER);

    // The server saw the client's certificate and the plaintext request — the proxy did not.
    expect(clientCertsSeenByServer).toEqual([pki.client.cert.fingerprint256]);
    expect(requestsSeenByServer[0]).toContain(REQUEST_MARKER);
    const up = Buffer.concat(seen['to-registrar']);
    const down = Buffer.concat(seen['to-pledge']);
    for (const [dir, stream] of [['to-registrar', up], ['to-pledge', down]] as const) {
      const types = parseTlsRecords(stream);
      expect(types[0], `${dir} starts with a handshake record`).toBe(0x16);
      expect(types, `${dir} carries application data`).toContain(0x17);
      for (const text of [REQUEST_MARKER, RESPONSE_MARKER, 'HTTP/1.1', 'requestvoucher']) {
        expect(stream.includes(Buffer.from(text)), `${dir} must not contain "${text}"`).toBe(false);
      }
    }
    const stats = proxy.stats().tcp;
    expect(stats.opened).toBe(1);
    expect(stats.bytes['to-registrar']).toBe(up.length);
    expect(stats.bytes['to-pledge']).toBe(down.length);
    expect(stats.records['to-registrar'][0x17]).toBeGreaterThan(0);
  });

  it('client-side verification still fails against a wrong CA: the proxy cannot substitute a certificate', async () => {
    const other = await makeTlsFixture();
    const sock = tlsConnect({ host: '127.0.0.1', port: proxy.port, ca: other.caPem, checkServerIdentity: () => undefined });
    const err = await new Promise<Error>((resolve) => { sock.once('error', resolve); sock.once('secureConnect', () => resolve(new Error('connected'))); });
    sock.destroy();
    expect(err.message).toMatch(/certificate/i);
  });
});

describe('join proxy: refuses to relay anything but TLS', () => {
  let upstream: TcpServer;
  let proxy: JoinProxy;
  const received: Buffer[] = [];

  beforeAll(async () => {
    upstream = createTcpServer((s) => { s.on('data', (d: Buffer) => received.push(d)); s.on('error', () => {}); });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    proxy = createJoinProxy({ listen: { host: '127.0.0.1', port: 0 }, registrar: { host: '127.0.0.1', port: (upstream.address() as AddressInfo).port }, announce: false });
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('closes a plaintext HTTP connection without forwarding a byte of it', async () => {
    const s = tcpConnect({ host: '127.0.0.1', port: proxy.port });
    await new Promise<void>((r) => s.once('connect', r));
    s.on('error', () => {});
    s.write('GET /.well-known/brski/requestvoucher HTTP/1.1\r\nHost: registrar\r\n\r\n');
    await new Promise<void>((r) => s.once('close', () => r()));
    expect(Buffer.concat(received).length).toBe(0);
    expect(proxy.stats().tcp.refused).toBe(1);
  });

  it('closes a stream whose first record is not a handshake (e.g. application data injected up front)', async () => {
    const s = tcpConnect({ host: '127.0.0.1', port: proxy.port });
    await new Promise<void>((r) => s.once('connect', r));
    s.on('error', () => {});
    s.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb]));
    await new Promise<void>((r) => s.once('close', () => r()));
    expect(Buffer.concat(received).length).toBe(0);
    expect(proxy.stats().tcp.refused).toBe(2);
  });

  it('reports an unreachable registrar by closing the pledge connection', async () => {
    const dead = createTcpServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const p = createJoinProxy({ listen: { host: '127.0.0.1', port: 0 }, registrar: { host: '127.0.0.1', port }, announce: false });
    await p.start();
    try {
      const s = tcpConnect({ host: '127.0.0.1', port: p.port });
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('close', () => r()));
      expect(p.stats().tcp.upstreamFailures).toBe(1);
      expect(p.stats().tcp.active).toBe(0);
    } finally {
      await p.stop();
    }
  });
});
