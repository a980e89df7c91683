import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/errors.ts';
import {
  csrAttr, csrAttrsRequirements, decodeBase64Body, decodeCertsOnly, decodeCsrAttrs, encodeBase64Body, encodeCertsOnly, encodeCsrAttrs,
} from '../../src/est/index.ts';
import { OID, parseSubjectAltName, pemToDer, subjectAltNameExtension } from '../../src/pki/index.ts';
import { makeTestPki, openssl, VECTORS } from '../pki/fixtures.ts';

const vec = (p: string) => new Uint8Array(readFileSync(join(VECTORS, p)));

describe('certs-only CMS', () => {
  it('decodes the RFC 9148 /crts vector with trailing empty CRLs and SignerInfos', () => {
    const certs = decodeCertsOnly(vec('est-coaps/A1-crts-response.cf281.der'));
    expect(certs).toHaveLength(1);
    expect(certs[0]!.subject).toContain('Root CA');
    expect(certs[0]!.verify(certs[0]!.publicKey)).toBe(true);
    expect(decodeCertsOnly(vec('est-coaps/A2-sen-response.cf281.der'))[0]!.issuer).toContain('802.1AR CA');
  });

  it('round-trips byte-exact certificates in order; openssl pkcs7 reads it', async () => {
    const pki = await makeTestPki();
    const der = encodeCertsOnly([pki.idevidCa, pki.root]);
    const back = decodeCertsOnly(der);
    expect(back.map((c) => c.fingerprint256)).toEqual([pki.idevidCa.fingerprint256, pki.root.fingerprint256]);
    const text = openssl((d) => ['pkcs7', '-inform', 'DER', '-in', join(d, 'p.der'), '-print_certs', '-noout'], { 'p.der': der });
    expect(text).toContain('Test IDevID CA');
    expect(text).toContain('Test Maker Root CA');
  });

  it('reads openssl-produced certs-only (crl2pkcs7)', async () => {
    const pki = await makeTestPki();
    const pem = openssl((d) => ['crl2pkcs7', '-nocrl', '-certfile', join(d, 'c.pem')], { 'c.pem': pki.root });
    const certs = decodeCertsOnly(pemToDer(pem, 'PKCS7'));
    expect(certs.map((c) => c.fingerprint256)).toEqual([pki.root.fingerprint256]);
  });

  it('rejects garbage, truncation, wrong content type and messages with signers', async () => {
    const pki = await makeTestPki();
    const der = encodeCertsOnly([pki.root]);
    expect(() => decodeCertsOnly(new Uint8Array([0x30, 0x00]))).toThrow(MalformedError);
    expect(() => decodeCertsOnly(der.subarray(0, der.length - 1))).toThrow(MalformedError);
    expect(() => decodeCertsOnly(new Uint8Array(Buffer.from('hello')))).toThrow(MalformedError);
    const wrongType = Buffer.from(der); wrongType[14] = 0x01; // signedData → data
    expect(() => decodeCertsOnly(wrongType)).toThrow(MalformedError);
    const cms = readFileSync(join(VECTORS, 'rfc8995/voucher_00-D0-E5-F2-00-02.der'));
    expect(() => decodeCertsOnly(new Uint8Array(cms))).toThrow(/signers/);
  });
});

describe('csrattrs', () => {
  const files = readdirSync(join(VECTORS, 'est-csrattrs')).filter((f) => f.endsWith('.der'));
  it.each(files)('decodes %s and re-encodes it byte-exact', (f) => {
    const der = vec(`est-csrattrs/${f}`);
    const items = decodeCsrAttrs(der);
    expect(items.length).toBeGreaterThan(0);
    expect(Buffer.from(encodeCsrAttrs(items))).toEqual(Buffer.from(der));
    const b64 = readFileSync(join(VECTORS, 'est-csrattrs', f.replace(/\.der$/, '.b64')), 'utf8');
    expect(decodeBase64Body(b64)).toEqual(der);
  });

  it('RFC 7030 example: challengePassword, P-384, macAddress, ecdsa-with-SHA384', () => {
    const r = csrAttrsRequirements(decodeCsrAttrs(vec('est-csrattrs/rfc7030-example01.csrattr.der')));
    expect(r.oids).toEqual([OID.challengePassword, '1.3.6.1.1.1.1.22', OID.ecdsaWithSha384]);
    expect(r.ecCurveOid).toBe(OID.secp384r1);
    expect(csrAttrsRequirements(decodeCsrAttrs(vec('est-coaps/A4-att-response.cf285.der'))).oids).toContain(OID.challengePassword);
  });

  it('ACP example: one id-ExtensionReq with a critical SAN otherName', () => {
    const r = csrAttrsRequirements(decodeCsrAttrs(vec('est-csrattrs/realistic-acp.csrattr.der')));
    expect(r.extensions).toHaveLength(1);
    expect(r.extensions[0]).toMatchObject({ oid: OID.subjectAltName, critical: true });
    expect(parseSubjectAltName(r.extensions[0]!.value).other).toBe(1);
  });

  it('harkins01: RSA key size request (INTEGER 0x1000)', () => {
    expect(csrAttrsRequirements(decodeCsrAttrs(vec('est-csrattrs/harkins01.csrattr.der'))).rsaBits).toBe(4096);
  });

  it('builders round-trip (RFC 9908 attribute form)', () => {
    const der = encodeCsrAttrs([csrAttr.oid(OID.challengePassword), csrAttr.ecKey('P-256'), csrAttr.extensionRequest([subjectAltNameExtension({ dns: ['x.example'] }, true)])]);
    const r = csrAttrsRequirements(decodeCsrAttrs(der));
    expect(r.oids).toEqual([OID.challengePassword]);
    expect(r.ecCurveOid).toBe(OID.secp256r1);
    expect(parseSubjectAltName(r.extensions[0]!.value).dns).toEqual(['x.example']);
    expect(r.extensions[0]!.critical).toBe(true);
    expect(Buffer.from(encodeCsrAttrs([]))).toEqual(Buffer.from([0x30, 0x00]));
  });

  it('rejects malformed csrattrs and duplicate id-ExtensionReq', () => {
    expect(() => decodeCsrAttrs(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]))).toThrow(MalformedError); // INTEGER element
    expect(() => decodeCsrAttrs(new Uint8Array([0x04, 0x00]))).toThrow(MalformedError);
    const ext = csrAttr.extensionRequest([subjectAltNameExtension({ dns: ['x.example'] })]);
    expect(() => csrAttrsRequirements([ext, ext])).toThrow(MalformedError);
  });
});

describe('base64 bodies (RFC 8951)', () => {
  it('tolerates CR, LF, space and tab; missing padding', () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253]);
    const enc = encodeBase64Body(bytes);
    expect(decodeBase64Body(enc)).toEqual(bytes);
    expect(decodeBase64Body(` AAEC\r\n+vv8\t/Q==\n`)).toEqual(bytes);
    expect(decodeBase64Body('AAEC+vv8/Q')).toEqual(bytes);
    expect(decodeBase64Body(Buffer.from('AAEC+vv8/Q=='))).toEqual(bytes);
  });

  it('wraps at 64 columns', () => {
    const lines = encodeBase64Body(new Uint8Array(100)).trimEnd().split('\n');
    expect(lines[0]).toHaveLength(64);
    expect(lines.every((l) => l.length <= 64)).toBe(true);
  });

  it('rejects junk, url-safe alphabet, bad padding and empty bodies', () => {
    for (const bad of ['', '  \r\n', 'AAEC!', 'AA-_', 'AAEC=AAA', 'A', 'AAE==', '-----BEGIN CERTIFICATE-----', 'AA==AA==']) {
      expect(() => decodeBase64Body(bad), JSON.stringify(bad)).toThrow(MalformedError);
    }
  });

  it('a /cacerts body decodes to certificates end to end', async () => {
    const pki = await makeTestPki();
    const body = encodeBase64Body(encodeCertsOnly([pki.root]));
    expect(decodeCertsOnly(decodeBase64Body(body))[0]).toBeInstanceOf(X509Certificate);
  });
});
