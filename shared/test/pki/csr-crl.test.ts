import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BrskiError, MalformedError } from '../../src/errors.ts';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';
import {
  createCrl, createCsr, generateKeyPair, isRevokedIn, OID, parseCrl, parseCsr, verifyCrlSignature, verifyCsr,
} from '../../src/pki/index.ts';
import { makeTestPki, openssl, VECTORS } from './fixtures.ts';

let pki: Awaited<ReturnType<typeof makeTestPki>>;
beforeAll(async () => { pki = await makeTestPki(); });

describe('CSR', () => {
  it('round-trips subject, SAN, challengePassword; openssl req -verify accepts it', async () => {
    const k = generateKeyPair('P-384');
    const der = await createCsr([['CN', 'pledge'], ['serialNumber', 'PSIM-000001']], new SoftwareSigner(k.privateKey),
      { subjectAltName: { dns: ['pledge.example'], ip: ['10.0.0.1'] }, challengePassword: 'secret' });
    const csr = verifyCsr(der);
    expect(csr.subject).toEqual([['CN', 'pledge'], ['serialNumber', 'PSIM-000001']]);
    expect(csr.signatureAlgorithm).toBe(OID.ecdsaWithSha384);
    expect(csr.subjectAltName).toMatchObject({ dns: ['pledge.example'], ip: ['10.0.0.1'] });
    expect(csr.challengePassword).toBe('secret');
    expect(Buffer.from(csr.spkiDer)).toEqual(k.publicKey.export({ type: 'spki', format: 'der' }));
    const out = openssl((d) => ['req', '-inform', 'DER', '-in', join(d, 'r.der'), '-verify', '-noout', '-text'], { 'r.der': der });
    expect(out).toContain('self-signature verify OK');
    expect(out).toContain('serialNumber = PSIM-000001');
    expect(out).toContain('DNS:pledge.example');
  });

  it('bad signature → bad-csr; parseCsr reports signatureValid=false', async () => {
    const der = Buffer.from(await createCsr([['CN', 'pledge']], new SoftwareSigner(generateKeyPair().privateKey)));
    const i = der.indexOf(Buffer.from('pledge'));
    der[i] = 'P'.charCodeAt(0);
    expect(parseCsr(der).signatureValid).toBe(false);
    expect(() => verifyCsr(der)).toThrow(expect.objectContaining({ code: 'bad-csr' }));
    // openssl 3.0 exits 0 here but says so on stderr
    expect(openssl((d) => ['req', '-inform', 'DER', '-in', join(d, 'r.der'), '-verify', '-noout'], { 'r.der': der })).toContain('verify failure');
  });

  it('a CSR signed with a different key than it contains fails proof of possession', async () => {
    const a = generateKeyPair(); const b = generateKeyPair();
    // signer reports a's public key but signs with b's private key
    const liar = { algorithm: 'ES256' as const, publicKey: a.publicKey, certificates: [], sign: (d: Uint8Array) => new SoftwareSigner(b.privateKey).sign(d) };
    const der = await createCsr([['CN', 'x']], liar);
    expect(() => verifyCsr(der)).toThrow(BrskiError);
  });

  it('garbage and truncated input → MalformedError', async () => {
    const der = await createCsr([['CN', 'x']], new SoftwareSigner(generateKeyPair().privateKey));
    expect(() => parseCsr(new Uint8Array([1, 2, 3]))).toThrow(MalformedError);
    expect(() => parseCsr(der.subarray(0, der.length - 5))).toThrow(MalformedError);
    expect(() => parseCsr(new Uint8Array([...der, 0]))).toThrow(MalformedError);
    expect(() => parseCsr(new Uint8Array(0))).toThrow(MalformedError);
  });

  it('parses the RFC 9148 /sen request vector (hardwareModuleName SAN, challengePassword)', () => {
    const csr = verifyCsr(new Uint8Array(readFileSync(`${VECTORS}/est-coaps/A2-sen-request.cf286.der`)));
    expect(csr.subject.find(([k]) => k === 'serialNumber')?.[1]).toBe('Wt1234');
    expect(csr.subjectAltName?.other).toBe(1);
    expect(csr.challengePassword).toBeDefined();
    expect(verifyCsr(new Uint8Array(readFileSync(`${VECTORS}/est-coaps/A3-skg-request.cf286.der`))).subject).toEqual([['O', 'skg example']]);
  });
});

describe('CRL', () => {
  it('lists revoked serials (openssl crl -text), verifies, and isRevokedIn matches', async () => {
    const crlDer = await createCrl({
      issuer: pki.caSigner, issuerCertificate: pki.idevidCa,
      revoked: [{ serialNumber: pki.idevid.serialNumber, revokedAt: new Date('2026-01-02T03:04:05Z'), reason: 'keyCompromise' },
        { serialNumber: '0a', revokedAt: new Date('2026-01-01T00:00:00Z') }],
      thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000), crlNumber: 7,
    });
    const text = openssl((d) => ['crl', '-inform', 'DER', '-in', join(d, 'c.der'), '-noout', '-text'], { 'c.der': crlDer });
    expect(text.replace(/:/g, '').toUpperCase()).toContain(pki.idevid.serialNumber.toUpperCase());
    expect(text).toContain('Key Compromise');
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*7/);
    const verified = openssl((d) => ['crl', '-inform', 'DER', '-in', join(d, 'c.der'), '-CAfile', join(d, 'ca.pem'), '-noout'],
      { 'c.der': crlDer, 'ca.pem': pki.idevidCa });
    expect(verified).toContain('verify OK');
    const crl = parseCrl(crlDer);
    expect(crl.crlNumber).toBe(7n);
    expect(crl.revoked.get('A')).toEqual({ revokedAt: new Date('2026-01-01T00:00:00Z') });
    expect(verifyCrlSignature(crl, pki.idevidCa)).toBe(true);
    expect(verifyCrlSignature(crl, pki.root)).toBe(false);
    expect(isRevokedIn(crl, pki.idevid)).toBe(true);
    expect(isRevokedIn(crl, pki.registrar)).toBe(false); // different issuer
  });

  it('a tampered CRL fails signature verification; garbage is MalformedError', async () => {
    const crlDer = Buffer.from(await createCrl({ issuer: pki.caSigner, issuerCertificate: pki.idevidCa, revoked: [{ serialNumber: '1234', revokedAt: new Date() }],
      thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 1000_000), crlNumber: 1 }));
    const i = crlDer.indexOf(Buffer.from([0x02, 0x02, 0x12, 0x34]));
    crlDer[i + 3] = 0x35;
    const crl = parseCrl(crlDer);
    expect(crl.revoked.has('1235')).toBe(true);
    expect(verifyCrlSignature(crl, pki.idevidCa)).toBe(false);
    expect(() => parseCrl(new Uint8Array([0x30, 0x03, 1, 2, 3]))).toThrow(MalformedError);
  });
});
