import https from 'node:https';
import tls from 'node:tls';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGracefully, createTlsServer, listen } from '../../src/http/server.ts';
import { makeTestPki, type TestPki } from './certs.ts';
import { request } from './client.ts';

let pki: TestPki;
beforeAll(() => { pki = makeTestPki(); });
afterAll(() => pki.cleanup());

function handshake(port: number, opts: tls.ConnectionOptions): Promise<{ protocol: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.rootCert, servername: 'localhost', ...opts }, () => {
      const out = { protocol: s.getProtocol(), cipher: s.getCipher().name };
      s.end();
      resolve(out);
    });
    s.on('error', reject);
  });
}

describe('createTlsServer', () => {
  let server: https.Server;
  let port: number;
  beforeAll(async () => {
    const app = new Koa();
    app.use((ctx) => { ctx.body = 'ok'; });
    server = createTlsServer(app, { key: pki.serverKey, cert: pki.serverCert, headersTimeoutMs: 2_000, requestTimeoutMs: 3_000, keepAliveTimeoutMs: 1_500 });
    port = await listen(server, 0);
  });
  afterAll(() => closeGracefully(server, 1_000));

  it('binds port 0 to a real port and applies the timeouts', () => {
    expect(port).toBeGreaterThan(0);
    expect(server.headersTimeout).toBe(2_000);
    expect(server.requestTimeout).toBe(3_000);
    expect(server.keepAliveTimeout).toBe(1_500);
  });

  it('speaks TLS 1.3 and TLS 1.2 with ECDHE + AEAD', async () => {
    expect((await handshake(port, {})).protocol).toBe('TLSv1.3');
    const t12 = await handshake(port, { maxVersion: 'TLSv1.2' });
    expect(t12.protocol).toBe('TLSv1.2');
    expect(t12.cipher).toMatch(/^ECDHE-ECDSA-(AES\d+-GCM|CHACHA20)/);
  });

  it('refuses TLS 1.1 and below', async () => {
    await expect(handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toThrow();
  });

  it('refuses non-forward-secret and non-AEAD TLS 1.2 suites', async () => {
    // Suites the client would happily use: the server's list must be what refuses them.
    await expect(handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA' })).rejects.toThrow();
    await expect(handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256:AES256-GCM-SHA384' })).rejects.toThrow();
  });

  it('asks for a client certificate but lets the app decide', async () => {
    const noCert = await request(port, '/', { ca: pki.rootCert, servername: 'localhost' });
    expect(noCert.status).toBe(200);
    const rogue = await request(port, '/', { ca: pki.rootCert, servername: 'localhost', key: pki.rogueKey, cert: pki.rogueCert });
    expect(rogue.status).toBe(200);
  });
});

describe('session resumption', () => {
  async function connectTwice(port: number): Promise<{ reused: boolean; chainLength: number }> {
    const once = (session?: Buffer) => new Promise<{ reused: boolean; session: Buffer | undefined; body: string }>((resolve, reject) => {
      let ticket: Buffer | undefined;
      let body = '';
      const s = tls.connect({ host: '127.0.0.1', port, ca: pki.rootCert, servername: 'localhost', key: pki.clientKey,
        cert: pki.clientChain, ...(session ? { session } : {}) }, () => {
        s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      s.on('session', (b: Buffer) => { ticket = b; });
      s.on('data', (d: Buffer) => { body += d.toString(); });
      s.on('end', () => resolve({ reused: s.isSessionReused(), session: ticket ?? s.getSession(), body }));
      s.on('error', reject);
    });
    const first = await once();
    const second = await once(first.session);
    return { reused: second.reused, chainLength: Number(/chain=(\d+)/.exec(second.body)?.[1]) };
  }

  async function serve(sessionResumption?: boolean): Promise<{ server: https.Server; port: number }> {
    const app = new Koa();
    // Count what OpenSSL still knows of the client chain on this connection.
    app.use((ctx) => {
      let n = 0;
      const seen = new Set<string>();
      let c: tls.DetailedPeerCertificate | undefined = (ctx.req.socket as tls.TLSSocket).getPeerCertificate(true);
      while (c?.raw && !seen.has(c.fingerprint256)) { seen.add(c.fingerprint256); n++; c = c.issuerCertificate; }
      ctx.body = `chain=${n}`;
    });
    const server = createTlsServer(app, { key: pki.serverKey, cert: pki.serverCert, ...(sessionResumption === undefined ? {} : { sessionResumption }) });
    return { server, port: await listen(server, 0) };
  }

  it('is off by default, so every connection hands over the whole client chain', async () => {
    const { server, port } = await serve();
    const r = await connectTwice(port);
    await closeGracefully(server, 1_000);
    expect(r).toEqual({ reused: false, chainLength: 2 });
  });

  it('can be turned on, and then a resumed session only knows the leaf', async () => {
    const { server, port } = await serve(true);
    const r = await connectTwice(port);
    await closeGracefully(server, 1_000);
    expect(r).toEqual({ reused: true, chainLength: 1 });
  });
});

describe('closeGracefully', () => {
  it('lets the request in flight finish, then closes idle keep-alive sockets and refuses new connections', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => { entered = r; });
    const app = new Koa();
    app.use(async (ctx) => {
      if (ctx.path === '/slow') { entered(); await gate; }
      ctx.body = ctx.path;
    });
    const server = createTlsServer(app, { key: pki.serverKey, cert: pki.serverCert, keepAliveTimeoutMs: 60_000 });
    const port = await listen(server, 0);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
    const opts = { ca: pki.rootCert, servername: 'localhost', agent };

    await request(port, '/warm', opts); // leaves an idle keep-alive socket behind
    const slow = request(port, '/slow', opts);
    await inHandler;
    let closed = false;
    const closing = closeGracefully(server, 30_000).then(() => { closed = true; });
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false); // still waiting for /slow
    await expect(request(port, '/new', { ca: pki.rootCert, servername: 'localhost' })).rejects.toThrow(/ECONNREFUSED/);
    release();
    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('/slow');
    expect(reply.headers['connection']).toBe('close');
    await closing; // resolves although the keep-alive timeout is a minute
    expect(closed).toBe(true);
    agent.destroy();
  });

  it('destroys connections still busy after the timeout', async () => {
    const app = new Koa();
    app.use(() => new Promise(() => undefined)); // never answers
    const server = createTlsServer(app, { key: pki.serverKey, cert: pki.serverCert });
    const port = await listen(server, 0);
    const hung = request(port, '/', { ca: pki.rootCert, servername: 'localhost' });
    hung.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    await closeGracefully(server, 200);
    expect(server.listening).toBe(false);
    await expect(hung).rejects.toThrow(/socket hang up|ECONNRESET/);
  });
});
