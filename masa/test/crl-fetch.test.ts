/** The bounded CRL fetch: address guard, scheme, status, redirects, size cap and timeout. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCrlFetcher, CrlFetchError, isBlockedAddress } from '../src/authority/crl-fetch.ts';

let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    switch (req.url) {
      case '/ok': res.writeHead(200, { 'content-length': 3 }).end('abc'); break;
      case '/big-declared': res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000)); break;
      case '/big-chunked': res.writeHead(200); for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000)); res.end(); break;
      case '/redirect': res.writeHead(302, { location: '/ok' }).end(); break;
      case '/slow': setTimeout(() => res.writeHead(200).end('late'), 2000).unref(); break;
      default: res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); });

const lab = createCrlFetcher({ timeoutMs: 300, maxBytes: 4096, allowPrivateAddresses: true });

describe('crl fetch', () => {
  it('classifies loopback, private, link-local, CGNAT, mapped and ULA addresses as blocked', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', 'not-an-ip']) expect(isBlockedAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '2001:4860:4860::8888', '::ffff:8.8.8.8']) expect(isBlockedAddress(a), a).toBe(false);
  });

  it('returns the body of a 200', async () => {
    expect(Buffer.from(await lab(`${base}/ok`)).toString()).toBe('abc');
  });

  it('refuses loopback destinations unless allowed, by literal address and by name', async () => {
    const strict = createCrlFetcher({ timeoutMs: 1000, maxBytes: 4096, allowPrivateAddresses: false });
    await expect(strict(`${base}/ok`)).rejects.toThrow(/private\/loopback/);
    await expect(strict(`${base.replace('127.0.0.1', 'localhost')}/ok`)).rejects.toThrow(/private\/loopback/);
  });

  it('refuses other schemes, non-200 answers and redirects', async () => {
    await expect(lab('ldap://example.com/cn=crl')).rejects.toBeInstanceOf(CrlFetchError);
    await expect(lab(`${base}/missing`)).rejects.toThrow(/HTTP 404/);
    await expect(lab(`${base}/redirect`)).rejects.toThrow(/HTTP 302/);
  });

  it('enforces the size cap on the declared length and while reading', async () => {
    await expect(lab(`${base}/big-declared`)).rejects.toThrow(/exceeds 4096/);
    await expect(lab(`${base}/big-chunked`)).rejects.toThrow(/exceeds 4096/);
  });

  it('gives up after the timeout', async () => {
    await expect(lab(`${base}/slow`)).rejects.toThrow(/within 300 ms/);
  });
});
