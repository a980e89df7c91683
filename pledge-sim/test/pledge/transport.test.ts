import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:https';
import { describe, expect, it } from 'vitest';
import { checkPresentedSignatures, parseRetryAfter, retryWaitSeconds, DEFAULT_RETRY, RegistrarLink } from '../../src/pledge/transport.ts';
import { PledgeFailure } from '../../src/pledge/errors.ts';
import { createDomain, createManufacturer, manufacturePledge } from '../helpers/fixture-pki.ts';

describe('Retry-After handling', () => {
  it('parses delta-seconds and HTTP dates, ignores garbage', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter(new Date(1_000_000 + 30_000).toUTCString(), 1_000_000)).toBeCloseTo(30, 0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('waits at least Retry-After, adds jitter, and never more than the cap', () => {
    const p = { ...DEFAULT_RETRY, capSeconds: 60, jitter: 0.2, defaultSeconds: 5 };
    expect(retryWaitSeconds(10, p, () => 0)).toBe(10);
    expect(retryWaitSeconds(10, p, () => 1)).toBeCloseTo(12);
    expect(retryWaitSeconds(3600, p, () => 0.5)).toBe(60);
    expect(retryWaitSeconds(59, p, () => 1)).toBe(60);
    expect(retryWaitSeconds(undefined, p, () => 0)).toBe(5);
    expect(retryWaitSeconds(0, p, () => 0)).toBe(1); // Retry-After: 0 is not a tight loop
    expect(retryWaitSeconds(0, { ...p, capSeconds: 0.01 }, () => 0)).toBe(0.01);
  });
});

describe('provisional acceptance of the registrar chain', () => {
  it('accepts a chain whose presented links verify, and an EE whose issuer is absent', async () => {
    const d = await createDomain('A');
    expect(() => checkPresentedSignatures([d.registrar, d.ca])).not.toThrow();
    expect(() => checkPresentedSignatures([d.registrar])).not.toThrow();
  });

  it('refuses a presented chain with a broken signature, and an empty chain', async () => {
    const d = await createDomain('A');
    const der = Buffer.from(d.registrar.raw);
    der[der.length - 5]! ^= 0x01; // inside the signature value
    const broken = new X509Certificate(der);
    expect(() => checkPresentedSignatures([broken, d.ca])).toThrow(PledgeFailure);
    expect(() => checkPresentedSignatures([])).toThrow(/registrar-cert-invalid/);
  });

  it('refuses a self-issued top whose own signature fails', async () => {
    const d = await createDomain('A');
    const der = Buffer.from(d.ca.raw);
    der[der.length - 5]! ^= 0x01;
    expect(() => checkPresentedSignatures([d.registrar, new X509Certificate(der)])).toThrow(/registrar-cert-invalid/);
  });
});

describe('RegistrarLink', () => {
  it('before any pin, a later connection (202 polling) must present the certificate of the first one', async () => {
    const a = await createDomain('A');
    const b = await createDomain('B');
    const ctx = (d: typeof a) => ({ key: d.registrarKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: d.registrar.toString() + d.ca.toString() });
    let requests = 0;
    const server = createServer({ ...ctx(a), requestCert: true, rejectUnauthorized: false }, (_req, res) => {
      requests++;
      // Pending, and the next connection is answered with another registrar's certificate.
      server.setSecureContext(ctx(b));
      res.writeHead(202, { 'retry-after': '0', connection: 'close' }).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const m = await createManufacturer();
    const se = await manufacturePledge(m, 'SN-POLL');
    const link = new RegistrarLink({ origin: `https://127.0.0.1:${(server.address() as { port: number }).port}`, secureContext: se.tlsContext('idevid'),
      retry: { ...DEFAULT_RETRY, capSeconds: 0.01, transportRetries: 0 } });
    try {
      const chain = await link.connect(); // the certificate the PVR names
      expect(chain[0]!.fingerprint256).toBe(a.registrar.fingerprint256);
      await expect(link.exchange({ method: 'POST', path: '/.well-known/brski/requestvoucher', body: Buffer.from('pvr') }))
        .rejects.toMatchObject({ reason: 'registrar-cert-changed' });
      expect(requests).toBe(1);
    } finally {
      link.close();
      server.close();
    }
  });

  it('keeps one TLS session for several requests, sends no SNI, and refuses a later connection with another certificate', async () => {
    const a = await createDomain('A');
    const b = await createDomain('B');
    const ctx = (d: typeof a) => ({ key: d.registrarKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: d.registrar.toString() + d.ca.toString() });
    const sessions: Array<string | false | null> = [];
    const server = createServer({ ...ctx(a), requestCert: true, rejectUnauthorized: false }, (_req, res) => res.end('ok'));
    server.on('secureConnection', (s) => sessions.push(s.servername));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const m = await createManufacturer();
    const se = await manufacturePledge(m, 'SN-LINK');
    const link = new RegistrarLink({ origin: `https://127.0.0.1:${(server.address() as { port: number }).port}`, secureContext: se.tlsContext('idevid'),
      retry: { ...DEFAULT_RETRY, capSeconds: 0.01, transportRetries: 1 } });
    try {
      const chain = await link.connect();
      expect(chain[0]!.fingerprint256).toBe(a.registrar.fingerprint256);
      link.pinLeaf(chain[0]!);
      for (let i = 0; i < 3; i++) expect((await link.exchange({ method: 'GET', path: '/x', retryTransport: true })).status).toBe(200);
      expect(sessions).toEqual([false]); // one connection, no SNI
      // The server now presents another registrar's certificate; the next connection must be refused.
      server.setSecureContext(ctx(b));
      server.closeAllConnections();
      await expect(link.exchange({ method: 'GET', path: '/x', retryTransport: true })).rejects.toMatchObject({ reason: 'registrar-cert-changed' });
    } finally {
      link.close();
      server.close();
    }
  });
});

describe('transport failure names', () => {
  it('names a refused TCP connection registrar-unreachable and a failed handshake tls-failed', async () => {
    const { createServer: createTcp } = await import('node:net');
    const m = await createManufacturer();
    const se = await manufacturePledge(m, 'SN-TLSFAIL');
    const retry = { ...DEFAULT_RETRY, transportRetries: 0 };
    // A TCP server that hangs up right away: TCP is up, TLS cannot complete.
    const tcp = createTcp((s) => s.destroy()).listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const port = (tcp.address() as { port: number }).port;
    try {
      await expect(new RegistrarLink({ origin: `https://127.0.0.1:${port}`, secureContext: se.tlsContext('idevid'), retry }).connect())
        .rejects.toMatchObject({ reason: 'tls-failed' });
    } finally { tcp.close(); }
    await expect(new RegistrarLink({ origin: `https://127.0.0.1:${port}`, secureContext: se.tlsContext('idevid'), retry }).connect())
      .rejects.toMatchObject({ reason: 'registrar-unreachable' });
  });
});
