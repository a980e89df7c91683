/** peerCertificates: what a TLS client presented, leaf first, issuers shared between connections. */
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeGracefully, createTlsServer, listen } from '../../src/http/server.ts';
import { peerCertificates } from '../../src/http/middleware.ts';
import { makeTestPki, type TestPki } from './certs.ts';
import { request } from './client.ts';

let pki: TestPki;
let server: https.Server;
let port: number;
const seen: Array<readonly X509Certificate[]> = [];

beforeAll(async () => {
  pki = makeTestPki();
  const app = new Koa();
  app.use((ctx) => {
    const chain = peerCertificates(ctx);
    seen.push(chain);
    ctx.body = String(chain.length);
  });
  server = createTlsServer(app, { key: pki.serverKey, cert: pki.serverCert, ca: pki.rootCert });
  port = await listen(server, 0);
});
afterAll(async () => {
  await closeGracefully(server, 1_000);
  pki.cleanup();
});

// agent: false, so that every request is its own connection (the global agent keeps sockets alive).
const base = () => ({ ca: pki.rootCert, servername: 'localhost', agent: false as const });

describe('peerCertificates', () => {
  it('shares the parsed issuer between connections, never the leaf, and keeps the exact bytes', async () => {
    seen.length = 0;
    await request(port, '/', { ...base(), key: pki.clientKey, cert: pki.clientChain });
    await request(port, '/', { ...base(), key: pki.clientKey, cert: pki.clientChain });
    const [first, second] = seen;
    expect(first).toHaveLength(2); // what the client sent; the server's own ca list adds nothing
    expect(second![1]).toBe(first![1]); // one object for the same intermediate: downstream per-object caches hit
    expect(second![0]).not.toBe(first![0]); // each connection's leaf is its own
    expect(first![0]!.raw.equals(new X509Certificate(pki.clientCert).raw)).toBe(true);
    expect(first![1]!.raw.equals(new X509Certificate(pki.intermediateCert).raw)).toBe(true);
    expect(first![0]!.checkIssued(first![1]!)).toBe(true);
  });

  it('a different certificate under the same subject is not mistaken for a cached one', async () => {
    seen.length = 0;
    // The rogue certificate is self-signed: a chain of one, which must not pick up anything cached.
    await request(port, '/', { ...base(), key: pki.rogueKey, cert: pki.rogueCert });
    await request(port, '/', { ...base(), key: pki.rogueKey, cert: `${pki.rogueCert}\n${pki.intermediateCert}` });
    expect(seen[0]).toHaveLength(1);
    // The intermediate did not issue the rogue leaf, yet it was presented: handed over as sent, untrusted.
    expect(seen[1]!.map((c) => c.raw.toString('base64'))).toEqual([
      new X509Certificate(pki.rogueCert).raw.toString('base64'), new X509Certificate(pki.intermediateCert).raw.toString('base64'),
    ]);
  });
});
