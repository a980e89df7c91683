/**
 * OCSP response parsing and signer rules (masa/src/authority/ocsp.ts), on responses produced
 * offline by `openssl ocsp` (an independent implementation) from an OpenSSL CA index.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ocspRequest, parseOcspResponse } from '../src/authority/ocsp.ts';

const dir = mkdtempSync(join(tmpdir(), 'ocsp-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (n: string) => join(dir, n);
const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

writeFileSync(at('ext.cnf'), [
  '[req]', 'distinguished_name=dn', '[dn]',
  '[v3ca]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign',
  '[leaf]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature',
  '[resp]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=OCSPSigning',
].join('\n'));
function key(n: string): void { ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at(`${n}.key`)); }
function issue(n: string, serial: string, ext: string): X509Certificate {
  key(n);
  ssl('req', '-new', '-key', at(`${n}.key`), '-subj', `/CN=${n}`, '-out', at(`${n}.csr`));
  ssl('x509', '-req', '-in', at(`${n}.csr`), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-set_serial', serial, '-days', '5',
    '-extfile', at('ext.cnf'), '-extensions', ext, '-out', at(`${n}.pem`));
  return new X509Certificate(readFileSync(at(`${n}.pem`)));
}
key('ca');
ssl('req', '-new', '-x509', '-key', at('ca.key'), '-subj', '/CN=OCSP unit CA', '-days', '5', '-config', at('ext.cnf'), '-extensions', 'v3ca', '-out', at('ca.pem'));
const ca = new X509Certificate(readFileSync(at('ca.pem')));
const good = issue('good', '0x1001', 'leaf');
const other = issue('other', '0x1002', 'leaf');
issue('delegated', '0x2001', 'resp');
issue('plain', '0x2002', 'leaf'); // issued by the CA, but not an OCSP signer
const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
writeFileSync(at('index.txt'), `V\t${stamp(new Date(Date.now() + 5 * 86_400_000))}\t\t1001\tunknown\t/CN=good\n`);

/** openssl's answer about `cert`, signed by `signer`. */
function respond(cert: X509Certificate, signer: string): Uint8Array {
  writeFileSync(at('req.der'), ocspRequest(cert, ca));
  ssl('ocsp', '-index', at('index.txt'), '-CA', at('ca.pem'), '-rsigner', at(`${signer}.pem`), '-rkey', at(`${signer}.key`),
    '-reqin', at('req.der'), '-respout', at('resp.der'), '-ndays', '1');
  return new Uint8Array(readFileSync(at('resp.der')));
}

describe('OCSP responses', () => {
  it('openssl accepts our request, and its answer parses: good, with thisUpdate/nextUpdate (CA-signed and delegated)', () => {
    for (const signer of ['ca', 'delegated']) {
      const s = parseOcspResponse(respond(good, signer), good, ca, new Date());
      expect(s.status).toBe('good');
      expect(s.nextUpdate!.getTime()).toBeGreaterThan(Date.now());
    }
  });
  it('a certificate the index does not list is "unknown"', () => {
    expect(parseOcspResponse(respond(other, 'ca'), other, ca, new Date()).status).toBe('unknown');
  });
  it('an answer about another certificate is refused', () => {
    expect(() => parseOcspResponse(respond(good, 'ca'), other, ca, new Date())).toThrow(/no answer for this certificate/);
  });
  it('an answer signed by a CA-issued certificate without id-kp-OCSPSigning is refused', () => {
    expect(() => parseOcspResponse(respond(good, 'plain'), good, ca, new Date())).toThrow(/not signed by the issuer or a responder it authorised/);
  });
  it('a delegated responder certificate that has expired at the time of the check is refused', () => {
    const later = new Date(Date.now() + 10 * 86_400_000);
    expect(() => parseOcspResponse(respond(good, 'delegated'), good, ca, later)).toThrow(/not signed by the issuer/);
  });
  it('truncated, tampered or garbage responses are refused', () => {
    const der = respond(good, 'ca');
    expect(() => parseOcspResponse(der.subarray(0, der.length - 10), good, ca, new Date())).toThrow();
    // A byte of the signed part (the CertID serial 0x1001 inside tbsResponseData): the signature fails.
    const flipped = Uint8Array.from(der);
    const at1001 = Buffer.from(flipped).indexOf(Buffer.of(0x02, 0x02, 0x10, 0x01));
    expect(at1001).toBeGreaterThan(0);
    flipped[at1001 + 3]! ^= 0x01;
    expect(() => parseOcspResponse(flipped, good, ca, new Date())).toThrow(/not signed by the issuer/);
    expect(() => parseOcspResponse(Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x03), good, ca, new Date())).toThrow(/status 3 \(tryLater\)/);
    expect(() => parseOcspResponse(new Uint8Array(64), good, ca, new Date())).toThrow();
  });
});
