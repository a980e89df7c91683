/**
 * TLS hygiene, checked from outside with `openssl s_client` against the running registrar and
 * MASA: TLS 1.0/1.1 refused, non-ECDHE (static RSA / plain) suites refused, ECDHE works, and a
 * client certificate is requested (and required by the protocol endpoints) where BRSKI needs it.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agent, pledgeIdentity, request } from './helpers/client.ts';
import { FaultStack } from './helpers/stack.ts';

let stack: FaultStack;
beforeAll(async () => { stack = await FaultStack.create({ devices: 1 }); }, 120_000);
afterAll(async () => { await stack?.stop(); });

function sClient(port: number, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args],
    { input: 'Q\n', encoding: 'utf8', timeout: 15_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  // A completed handshake prints the negotiated cipher; a refused one prints "Cipher is (NONE)" or an alert.
  const ok = /New, TLSv1\.[23], Cipher is (?!\(NONE\))/.test(out) || /Cipher is ECDHE|Cipher is TLS_/.test(out);
  return { ok, out };
}

describe('TLS hygiene (openssl s_client)', () => {
  const services = [['registrar', () => stack.ports.registrar], ['registrar admin', () => stack.ports.registrarAdmin],
    ['MASA', () => stack.ports.masa], ['MASA admin', () => stack.ports.masaAdmin]] as const;
  for (const [name, port] of services) {
    it(`${name}: TLS 1.0/1.1 refused, non-ECDHE refused, ECDHE over 1.2 and 1.3 accepted`, () => {
      const v11 = sClient(port(), ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
      const v10 = sClient(port(), ['-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
      const rsa = sClient(port(), ['-tls1_2', '-cipher', 'AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256']);
      const ecdhe12 = sClient(port(), ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
      const cbc = sClient(port(), ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA']);
      const v13 = sClient(port(), ['-tls1_3']);
      console.log(`[faults] tls ${name} ${JSON.stringify({ tls11: v11.ok, tls10: v10.ok, nonEcdhe: rsa.ok, ecdheCbc: cbc.ok, ecdheGcm12: ecdhe12.ok, tls13: v13.ok })}`);
      expect(v11.ok, v11.out).toBe(false);
      expect(v10.ok, v10.out).toBe(false);
      expect(rsa.ok, rsa.out).toBe(false);
      expect(cbc.ok, cbc.out).toBe(false); // ECDHE but not AEAD: also off the list
      expect(ecdhe12.ok, ecdhe12.out).toBe(true);
      expect(v13.ok, v13.out).toBe(true);
    });
  }

  it('pledge-facing listeners request a client certificate; protocol endpoints refuse without one', async () => {
    for (const port of [stack.ports.registrar, stack.ports.masa]) {
      const r = sClient(port, ['-tls1_2']);
      expect(r.out, 'no CertificateRequest').toMatch(/Acceptable client certificate CA names|Client Certificate Types/);
    }
    const none = agent();
    const regNoCert = await request(none, stack.registrarUrl, { path: '/.well-known/brski/requestvoucher', body: 'x', headers: { 'content-type': 'application/voucher-jws+json' } });
    const masaNoCert = await request(none, stack.masaUrl, { path: '/.well-known/brski/requestvoucher', body: 'x', headers: { 'content-type': 'application/voucher-jws+json' } });
    const enrollNoCert = await request(none, stack.registrarUrl, { path: '/.well-known/est/simpleenroll', body: 'x', headers: { 'content-type': 'application/pkcs10' } });
    none.destroy();
    // With an IDevID the same request gets past authentication (and fails on its body instead).
    const withCert = agent(pledgeIdentity(stack.pki, 0));
    const regCert = await request(withCert, stack.registrarUrl, { path: '/.well-known/brski/requestvoucher', body: 'x', headers: { 'content-type': 'application/voucher-jws+json' } });
    withCert.destroy();
    console.log(`[faults] tls client-cert ${JSON.stringify({ regNoCert: regNoCert.status, masaNoCert: masaNoCert.status, enrollNoCert: enrollNoCert.status, regWithIdevid: regCert.status })}`);
    expect(regNoCert.status).toBe(401);
    expect(masaNoCert.status).toBe(401);
    expect(enrollNoCert.status).toBe(401);
    expect(regCert.status).toBe(400);
  });
});
