import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/errors.ts';
import { parseCertificatesPem } from '../../src/crypto/software-signer.ts';
import {
  certificateInfo, domainIdOf, hasEku, idevidIssuerEquals, idevidIssuerOf, keyIdentifierOf, masaBaseUrl, masaUrlOf, OID,
  serialNumberOf, spkiDer, spkiSha256, subjectKeyIdOf,
} from '../../src/pki/index.ts';
import { makeTestPki, VECTORS } from './fixtures.ts';

const load = (p: string) => new X509Certificate(readFileSync(`${VECTORS}/${p}`));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();

describe('identity of published IDevIDs', () => {
  it('rfc8995 IDevID: serial, MASA URL, synthetic idevid-issuer without AKI', () => {
    const c = load('rfc8995/idevid_00-D0-E5-F2-00-02.crt');
    expect(serialNumberOf(c)).toBe('00-D0-E5-F2-00-02');
    expect(masaUrlOf(c)).toBe('highway-test.example.com:9443');
    expect(masaBaseUrl(masaUrlOf(c)!)).toBe('https://highway-test.example.com:9443/.well-known/brski');
    expect(certificateInfo(c).authorityKeyId).toBeUndefined();
    const v = idevidIssuerOf(c);
    expect(v).toHaveLength(26);
    // digest §8.4/§11 #5: SHA-1 of the IDevID's own subjectPublicKey inside 04 18 30 16 80 14
    expect(hex(v)).toBe(`041830168014${hex(keyIdentifierOf(c))}`);
    expect(hex(keyIdentifierOf(c))).toBe(hex(keyIdentifierOf(c.publicKey)));
  });

  it('cbrski pledge: idevid-issuer equals the bytes in the published RVR', () => {
    const c = load('cbrski/pledge.pem');
    expect(serialNumberOf(c)).toBe('JADA123456789');
    expect(masaUrlOf(c)).toBe('masa.stok.nl');
    expect(masaBaseUrl('masa.stok.nl')).toBe('https://masa.stok.nl/.well-known/brski');
    const rvr = readFileSync(`${VECTORS}/cbrski/rvr.cose`);
    const fromRvr = '041830168014CB8D98CA74C51B58DDE7ACEF869A9443A8D666A6';
    expect(rvr.toString('hex').toUpperCase()).toContain(`581A${fromRvr}`);
    expect(hex(idevidIssuerOf(c))).toBe(fromRvr);
  });

  it('jws-voucher IDevID: idevid-issuer equals the RVR value', () => {
    const [idevid] = parseCertificatesPem(readFileSync(`${VECTORS}/jws-voucher/pvr-signer.chain.pem`, 'utf8'));
    const rvr = JSON.parse(readFileSync(`${VECTORS}/jws-voucher/rvr.payload.json`, 'utf8'));
    const fromRvr = Buffer.from(rvr['ietf-voucher-request:voucher']['idevid-issuer'], 'base64');
    expect(idevidIssuerEquals(idevidIssuerOf(idevid!), fromRvr)).toBe(true);
    expect(masaUrlOf(idevid!)).toBe('masa-test.xyzmanufacturer.com:9443');
  });

  it('rfc8366bis idevid1 (RSA, real-world style): serial with spaces and colons', () => {
    const c = load('rfc8366bis/idevid1-example.pem');
    expect(serialNumberOf(c)).toBe('PID:CHIMAY-U-AC SN:FDO27361XTF');
    expect(masaUrlOf(c)).toBeUndefined();
    expect(idevidIssuerOf(c)).toHaveLength(26);
  });

  it('registrar vector EKUs', () => {
    const c = load('cbrski/registrar.pem');
    expect(hasEku(c, OID.cmcRA) && hasEku(c, OID.serverAuth) && hasEku(c, OID.clientAuth)).toBe(true);
    const jrc = load('rfc8995/jrc_prime256v1.crt');
    expect(hasEku(jrc, OID.cmcRA)).toBe(true);
    expect(hasEku(jrc, OID.serverAuth)).toBe(false);
  });
});

describe('idevidIssuerEquals', () => {
  const full = Buffer.from('041830168014CB8D98CA74C51B58DDE7ACEF869A9443A8D666A6', 'hex');
  const bare = full.subarray(2);
  it('accepts both framings', () => {
    expect(idevidIssuerEquals(full, bare)).toBe(true);
    expect(idevidIssuerEquals(bare, full)).toBe(true);
    expect(idevidIssuerEquals(full, full)).toBe(true);
  });
  it('rejects different key ids and garbage', () => {
    const other = Buffer.from(full); other[25] = other[25]! ^ 1;
    expect(idevidIssuerEquals(full, other)).toBe(false);
    expect(idevidIssuerEquals(full, full.subarray(0, 20))).toBe(false);
    expect(idevidIssuerEquals(full, Buffer.from('0102', 'hex'))).toBe(false);
    expect(idevidIssuerEquals(new Uint8Array(0), new Uint8Array(0))).toBe(false);
    expect(idevidIssuerEquals(Buffer.concat([full, Buffer.of(0)]), full)).toBe(false);
  });
});

describe('masaBaseUrl (digest §8.2)', () => {
  it('authority forms', () => {
    expect(masaBaseUrl('localhost:8443')).toBe('https://localhost:8443/.well-known/brski');
    expect(masaBaseUrl('[::1]:9443')).toBe('https://[::1]:9443/.well-known/brski');
    expect(masaBaseUrl('masa.example.com:443')).toBe('https://masa.example.com/.well-known/brski');
  });
  it('full https URI is the base, trailing slash removed', () => {
    expect(masaBaseUrl('https://masa.example.com/brski/')).toBe('https://masa.example.com/brski');
    expect(masaBaseUrl('https://masa.example.com:8443/.well-known/brski')).toBe('https://masa.example.com:8443/.well-known/brski');
  });
  it('rejects non-https schemes, bad authorities, credentials and queries', () => {
    for (const bad of ['http://masa.example.com/brski', 'ftp://x/y', 'host:0', 'host:70000', 'ho st', '', 'a..b', 'https://u:p@masa.example.com/x',
      'https://masa.example.com/x?y=1', '/relative/path']) {
      expect(() => masaBaseUrl(bad), bad).toThrow(MalformedError);
    }
  });
});

describe('key identifiers and caching', () => {
  it('SKI, SPKI and domainId of our certificates', async () => {
    const pki = await makeTestPki();
    expect(subjectKeyIdOf(pki.registrar)).toEqual(keyIdentifierOf(pki.regKey.publicKey));
    expect(spkiDer(pki.registrar)).toEqual(spkiDer(pki.regKey.publicKey));
    expect(spkiDer(pki.regKey.privateKey)).toEqual(spkiDer(pki.regKey.publicKey));
    expect(spkiSha256(pki.registrar)).toHaveLength(32);
    expect(domainIdOf(pki.registrar)).toEqual(subjectKeyIdOf(pki.registrar));
    expect(certificateInfo(pki.idevid).authorityKeyId).toEqual(subjectKeyIdOf(pki.idevidCa));
    expect(hex(idevidIssuerOf(pki.idevid))).toBe(`041830168014${hex(subjectKeyIdOf(pki.idevidCa)!)}`);
    // a second object for the same certificate hits the fingerprint cache (same parsed record)
    expect(certificateInfo(new X509Certificate(pki.idevid.raw))).toBe(certificateInfo(pki.idevid));
  });

  it('domainIdOf falls back to SPKI SHA-256 without SKI', () => {
    const c = load('cbrski/pledge.pem');
    expect(subjectKeyIdOf(c)).toBeUndefined();
    expect(domainIdOf(c)).toEqual(spkiSha256(c));
  });
});
