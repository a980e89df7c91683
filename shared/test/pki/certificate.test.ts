import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';
import { MalformedError } from '../../src/errors.ts';
import {
  certificateInfo, certificateToPem, masaUrlExtension, parseSubjectAltName, pemToDer, subjectAltNameExtension, generateKeyPair, hasEku, issueCertificate, ldevidProfile, masaSignerProfile, NO_EXPIRY, OID,
  randomSerial, rootCaProfile, stationProfile, tlsServerProfile,
} from '../../src/pki/index.ts';
import { makeTestPki, openssl } from './fixtures.ts';

let pki: Awaited<ReturnType<typeof makeTestPki>>;
beforeAll(async () => { pki = await makeTestPki(); });

describe('issueCertificate', () => {
  it('builds chains that openssl verify accepts', () => {
    const out = openssl((d) => ['verify', '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'ca.pem'), join(d, 'leaf.pem')],
      { 'root.pem': pki.root, 'ca.pem': pki.idevidCa, 'leaf.pem': pki.idevid });
    expect(out).toContain('leaf.pem: OK');
  });

  it('openssl verify rejects a chain with the wrong root', async () => {
    const other = generateKeyPair();
    const otherRoot = await issueCertificate(rootCaProfile({ subject: [['O', 'Test Maker'], ['CN', 'Test Maker Root CA']], publicKey: other.publicKey }),
      { signer: new SoftwareSigner(other.privateKey) });
    expect(() => openssl((d) => ['verify', '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'ca.pem'), join(d, 'leaf.pem')],
      { 'root.pem': otherRoot, 'ca.pem': pki.idevidCa, 'leaf.pem': pki.idevid })).toThrow();
  });

  it('IDevID shows the MASA URL extension and a PrintableString serialNumber in openssl', () => {
    const text = openssl((d) => ['x509', '-noout', '-text', '-in', join(d, 'c.pem')], { 'c.pem': pki.idevid });
    expect(text).toMatch(/1\.3\.6\.1\.5\.5\.7\.1\.32:\s*\n\s*\.\.localhost:8443/);
    expect(text).toContain('serialNumber = PSIM-000042');
    expect(text).toContain('Not After : Dec 31 23:59:59 9999 GMT');
    expect(text).toContain('X509v3 Authority Key Identifier');
    const asn1 = openssl((d) => ['asn1parse', '-in', join(d, 'c.pem')], { 'c.pem': pki.idevid });
    expect(asn1).toMatch(/:serialNumber\s*\n.*PRINTABLESTRING\s*:PSIM-000042/);
  });

  it('registrar carries cmcRA, serverAuth, clientAuth, SKI and SAN', () => {
    const text = openssl((d) => ['x509', '-noout', '-text', '-in', join(d, 'c.pem')], { 'c.pem': pki.registrar });
    expect(text).toContain('CMC Registration Authority');
    expect(text).toContain('TLS Web Server Authentication');
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toContain('X509v3 Subject Key Identifier');
    expect(text).toContain('DNS:localhost, IP Address:127.0.0.1');
    expect(hasEku(pki.registrar, OID.cmcRA)).toBe(true);
    expect(hasEku(pki.idevid, OID.cmcRA)).toBe(false);
  });

  it('CA certificates are CAs with keyCertSign, end entities are not', () => {
    expect(pki.root.ca).toBe(true);
    expect(pki.idevidCa.ca).toBe(true);
    expect(certificateInfo(pki.idevidCa).pathLength).toBe(0);
    expect(pki.idevid.ca).toBe(false);
    expect(pki.idevid.checkIssued(pki.idevidCa)).toBe(true);
    expect(pki.idevid.verify(pki.idevidCa.publicKey)).toBe(true);
    expect(pki.idevid.verify(pki.root.publicKey)).toBe(false);
  });

  it('issues TLS server, MASA signer, station and LDevID profiles', async () => {
    const k = generateKeyPair();
    const issuer = { signer: pki.rootSigner, certificate: pki.root };
    const tls = await issueCertificate(tlsServerProfile({ subject: [['CN', 'masa']], publicKey: k.publicKey }), issuer);
    expect(tls.checkHost('localhost')).toBe('localhost');
    expect(tls.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(hasEku(tls, OID.serverAuth)).toBe(true);
    const signer = await issueCertificate(masaSignerProfile({ subject: [['CN', 'voucher signer']], publicKey: k.publicKey }), issuer);
    expect(certificateInfo(signer).ekus).toEqual([]);
    const station = await issueCertificate(stationProfile({ subject: [['CN', 'station 1']], publicKey: k.publicKey }), issuer);
    expect(certificateInfo(station).ekus).toEqual([OID.clientAuth]);
    const notAfter = new Date(Date.now() + 7 * 86_400_000);
    const ldevid = await issueCertificate(ldevidProfile({ serialNumber: 'PSIM-000042', publicKey: k.publicKey, notAfter, san: { dns: ['pledge.example'] } }), issuer);
    expect(certificateInfo(ldevid).notAfter.getTime()).toBe(Math.floor(notAfter.getTime() / 1000) * 1000);
    expect(ldevid.subject).toContain('serialNumber=PSIM-000042');
    expect(ldevid.subjectAltName).toBe('DNS:pledge.example');
  });

  it('CA key usage is keyCertSign + cRLSign (critical), EE digitalSignature', () => {
    const text = openssl((d) => ['x509', '-noout', '-ext', 'keyUsage,basicConstraints', '-in', join(d, 'c.pem')], { 'c.pem': pki.idevidCa });
    expect(text).toMatch(/Key Usage: critical\s*\n\s*Certificate Sign, CRL Sign/);
    expect(text).toMatch(/Basic Constraints: critical\s*\n\s*CA:TRUE, pathlen:0/);
    const ee = openssl((d) => ['x509', '-noout', '-ext', 'keyUsage', '-in', join(d, 'c.pem')], { 'c.pem': pki.registrar });
    expect(ee).toMatch(/Key Usage: critical\s*\n\s*Digital Signature\s*$/);
  });

  it('rejects bad SAN values and MASA URLs', () => {
    expect(() => subjectAltNameExtension({ dns: ['bad name'] })).toThrow(TypeError);
    expect(() => subjectAltNameExtension({ ip: ['300.1.1.1'] })).toThrow(TypeError);
    expect(() => subjectAltNameExtension({ ip: ['::ffff:1.2.3.4'] })).toThrow(TypeError);
    expect(() => subjectAltNameExtension({})).toThrow(TypeError);
    expect(parseSubjectAltName(subjectAltNameExtension({ ip: ['fe80::1', '10.1.2.3'] }).value).ip).toEqual(['fe80:0:0:0:0:0:0:1', '10.1.2.3']);
    expect(() => masaUrlExtension('')).toThrow(TypeError);
    expect(() => masaUrlExtension('höst:1')).toThrow(TypeError);
  });

  it('pemToDer finds the labelled block and rejects junk', () => {
    const pem = certificateToPem(pki.root);
    expect(Buffer.from(pemToDer(pem, 'CERTIFICATE'))).toEqual(pki.root.raw);
    expect(() => pemToDer(pem, 'PRIVATE KEY')).toThrow(MalformedError);
    expect(() => pemToDer('-----BEGIN X-----\n!!!\n-----END X-----\n')).toThrow(MalformedError);
    expect(() => pemToDer('nothing here')).toThrow(MalformedError);
  });

  it('uses UTCTime before 2050 and GeneralizedTime after', () => {
    expect(certificateInfo(pki.idevid).notAfter.getTime()).toBe(NO_EXPIRY.getTime());
    const asn1 = openssl((d) => ['asn1parse', '-in', join(d, 'c.pem')], { 'c.pem': pki.idevid });
    expect(asn1).toMatch(/UTCTIME/);
    expect(asn1).toMatch(/GENERALIZEDTIME\s*:99991231235959Z/);
  });

  it('serials are random, positive and 16 bytes', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const s = randomSerial();
      expect(s.length).toBe(16);
      expect(s[0]! & 0x80).toBe(0);
      expect(s[0]).not.toBe(0);
      seen.add(Buffer.from(s).toString('hex'));
    }
    expect(seen.size).toBe(200);
    expect(certificateInfo(pki.idevid).serialHex).toHaveLength(32);
  });

  it('refuses a signer that does not match the issuer certificate', async () => {
    const k = generateKeyPair();
    await expect(issueCertificate(masaSignerProfile({ subject: [['CN', 'x']], publicKey: k.publicKey }), { signer: pki.caSigner, certificate: pki.root }))
      .rejects.toThrow(/does not match/);
  });

  it('refuses to issue from an end-entity certificate', async () => {
    const k = generateKeyPair();
    await expect(issueCertificate(masaSignerProfile({ subject: [['CN', 'x']], publicKey: k.publicKey }),
      { signer: new SoftwareSigner(pki.regKey.privateKey), certificate: pki.registrar })).rejects.toThrow(/not a CA/);
  });

  it('refuses a self-signed certificate whose key differs from the signer', async () => {
    const k = generateKeyPair();
    await expect(issueCertificate(rootCaProfile({ subject: [['CN', 'x']], publicKey: k.publicKey }), { signer: pki.rootSigner })).rejects.toThrow(/differs/);
  });

  it('refuses a serialNumber that is not a PrintableString', async () => {
    const k = generateKeyPair();
    await expect(issueCertificate(ldevidProfile({ serialNumber: 'bad_serial', publicKey: k.publicKey }), { signer: pki.rootSigner, certificate: pki.root }))
      .rejects.toThrow(/PrintableString/);
  });

  it('a tampered certificate no longer verifies', () => {
    const der = Buffer.from(pki.idevid.raw);
    const i = der.indexOf(Buffer.from('PSIM-000042'));
    der[i + 10] = '3'.charCodeAt(0);
    const tampered = new X509Certificate(der);
    expect(tampered.verify(pki.idevidCa.publicKey)).toBe(false);
    expect(() => openssl((d) => ['verify', '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, 'ca.pem'), join(d, 'leaf.pem')],
      { 'root.pem': pki.root, 'ca.pem': pki.idevidCa, 'leaf.pem': tampered })).toThrow();
  });
});
