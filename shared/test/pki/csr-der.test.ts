/**
 * parseCsr on the TLV reader: canonical SPKI bytes (they are compared byte-wise and copied into
 * certificates), strict structure, and the same name decoding as before.
 */
import { createPublicKey, ECDH, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';
import { BrskiError, MalformedError } from '../../src/errors.ts';
import {
  createCsr, encodeName, issueCertificate, ldevidProfile, OID, parseCsr, rootCaProfile, signAndAssemble, verifyCsr,
} from '../../src/pki/index.ts';
import { derOid, derSequence, derTlv, spkiOfKey } from '../../src/pki/der.ts';

const VERSION_0 = Uint8Array.of(0x02, 0x01, 0x00);
const spkiOf = (k: KeyObject) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));
const ecSpki = (curveOid: string, point: Uint8Array) =>
  derSequence(derSequence(derOid(OID.ecPublicKey), derOid(curveOid)), derTlv(0x03, Uint8Array.of(0), point));

/** A CSR from hand-made parts, properly signed with `key` (so only the part under test is odd). */
function csrFrom(key: KeyObject, parts: { version?: Uint8Array; name?: Uint8Array; spki?: Uint8Array; attrs?: Uint8Array[]; extra?: Uint8Array }) {
  const info = derSequence(parts.version ?? VERSION_0, parts.name ?? encodeName([['CN', 'x']]),
    parts.spki ?? spkiOf(createPublicKey(key)), derTlv(0xa0, ...(parts.attrs ?? [])), ...(parts.extra ? [parts.extra] : []));
  return signAndAssemble(info, new SoftwareSigner(key));
}

describe('parseCsr: public key', () => {
  it.each(['P-256', 'P-384', 'P-521'] as const)('%s: spkiDer is the canonical export; an issued certificate carries exactly it', async (curve) => {
    const k = generateKeyPairSync('ec', { namedCurve: curve });
    const csr = verifyCsr(await createCsr([['CN', 'p']], new SoftwareSigner(k.privateKey)));
    expect(Buffer.from(csr.spkiDer)).toEqual(Buffer.from(spkiOf(k.publicKey)));
    expect(Buffer.from(spkiOf(csr.publicKey))).toEqual(Buffer.from(spkiOf(k.publicKey)));
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const caSigner = new SoftwareSigner(ca.privateKey);
    const caCert = await issueCertificate(rootCaProfile({ subject: [['CN', 'ca']], publicKey: ca.publicKey }), { signer: caSigner });
    const cert = await issueCertificate(ldevidProfile({ serialNumber: 'S1', publicKey: csr.publicKey }), { signer: caSigner, certificate: caCert });
    expect(Buffer.from(spkiOf(cert.publicKey))).toEqual(Buffer.from(spkiOf(k.publicKey)));
    expect(cert.verify(caCert.publicKey)).toBe(true);
  });

  it('a compressed point is accepted but spkiDer is the canonical (uncompressed) form, so byte comparisons still match', async () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = k.publicKey.export({ format: 'jwk' });
    const uncompressed = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const compressed = ECDH.convertKey(uncompressed, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    const csr = verifyCsr(await csrFrom(k.privateKey, { spki: ecSpki(OID.secp256r1, compressed) }));
    expect(Buffer.from(csr.spkiDer)).toEqual(Buffer.from(spkiOf(k.publicKey)));
    expect(Buffer.from(spkiOf(csr.publicKey))).toEqual(Buffer.from(spkiOf(k.publicKey)));
  });

  it('a non-minimal (BER) length inside the SPKI gives the canonical bytes, not the received ones', async () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const canonical = spkiOf(k.publicKey);
    // Re-frame the outer AlgorithmIdentifier length as 0x81 0x13 (long form for a short length).
    const ber = new Uint8Array([canonical[0]!, canonical[1]! + 1, 0x30, 0x81, ...canonical.subarray(3)]);
    const csr = parseCsr(await csrFrom(k.privateKey, { spki: ber }));
    expect(csr.signatureValid).toBe(true);
    expect(Buffer.from(csr.spkiDer)).toEqual(Buffer.from(canonical));
  });

  it('a point not on the curve, or a wrong point length, is MalformedError', async () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const bad = new Uint8Array(65).fill(1); bad[0] = 4;
    await expect(csrFrom(k.privateKey, { spki: ecSpki(OID.secp256r1, bad) }).then(parseCsr)).rejects.toThrow(MalformedError);
    await expect(csrFrom(k.privateKey, { spki: ecSpki(OID.secp256r1, bad.subarray(0, 40)) }).then(parseCsr)).rejects.toThrow(MalformedError);
  });

  it('RSA keys still parse (DER path) and verify', async () => {
    const k = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const info = derSequence(VERSION_0, encodeName([['CN', 'rsa']]), spkiOf(k.publicKey), Uint8Array.of(0xa0, 0x00));
    const { sign } = await import('node:crypto');
    const sig = sign('sha256', info, k.privateKey);
    const der = derSequence(info, derSequence(derOid(OID.sha256WithRsa), Uint8Array.of(0x05, 0x00)), derTlv(0x03, Uint8Array.of(0), sig));
    const csr = verifyCsr(der);
    expect(Buffer.from(csr.spkiDer)).toEqual(Buffer.from(spkiOf(k.publicKey)));
  });
});

describe('parseCsr: strict structure', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const attr = (oid: string, ...values: Uint8Array[]) => derSequence(derOid(oid), derTlv(0x31, ...values));

  it('decodes name string types like before (UTF8, Printable, BMP, Teletex)', async () => {
    const atv = (oid: string, v: Uint8Array) => derTlv(0x31, derSequence(derOid(oid), v));
    const name = derSequence(atv('2.5.4.3', derTlv(0x0c, Buffer.from('Pl€dge', 'utf8'))), atv('2.5.4.5', derTlv(0x13, Buffer.from('S-1'))),
      atv('2.5.4.10', derTlv(0x1e, Buffer.from('\u00d6\u20ac', 'utf16le').swap16())), atv('2.5.4.11', derTlv(0x14, Buffer.of(0x41, 0xe9))));
    const csr = verifyCsr(await csrFrom(key, { name }));
    expect(csr.subject).toEqual([['CN', 'Pl€dge'], ['serialNumber', 'S-1'], ['O', 'Ö€'], ['OU', 'Aé']]);
  });

  it('refuses invalid UTF-8 and non-string attribute values in the subject', async () => {
    const bad = derSequence(derTlv(0x31, derSequence(derOid('2.5.4.3'), derTlv(0x0c, Uint8Array.of(0xc3, 0x28)))));
    await expect(csrFrom(key, { name: bad }).then(parseCsr)).rejects.toThrow(MalformedError);
    const int = derSequence(derTlv(0x31, derSequence(derOid('2.5.4.3'), Uint8Array.of(0x02, 0x01, 0x05))));
    await expect(csrFrom(key, { name: int }).then(parseCsr)).rejects.toThrow(MalformedError);
  });

  it('refuses version ≠ 0, extra CertificationRequestInfo elements and a signature with unused bits', async () => {
    await expect(csrFrom(key, { version: Uint8Array.of(0x02, 0x01, 0x01) }).then(parseCsr)).rejects.toThrow(/version 0/);
    await expect(csrFrom(key, { extra: Uint8Array.of(0x05, 0x00) }).then(parseCsr)).rejects.toThrow(MalformedError);
    const der = Buffer.from(await createCsr([['CN', 'x']], new SoftwareSigner(key)));
    der[unusedBitsOffset(der)] = 1;
    expect(() => parseCsr(der)).toThrow(/unused bits/);
  });

  it('refuses malformed BER inside an attribute value, duplicate extensions and a second extensionRequest', async () => {
    await expect(csrFrom(key, { attrs: [attr('1.2.3.4', Uint8Array.of(0x30, 0x03, 0x04, 0x05, 0x00))] }).then(parseCsr)).rejects.toThrow(MalformedError);
    const ext = derSequence(derOid('1.2.3.5'), derTlv(0x04, Uint8Array.of(5, 0)));
    await expect(csrFrom(key, { attrs: [attr(OID.extensionRequest, derSequence(ext, ext))] }).then(parseCsr)).rejects.toThrow(/twice/);
    const one = attr(OID.extensionRequest, derSequence(ext));
    await expect(csrFrom(key, { attrs: [one, one] }).then(parseCsr)).rejects.toThrow(/exactly one/);
    await expect(csrFrom(key, { attrs: [attr(OID.challengePassword, Uint8Array.of(0x02, 0x01, 0x00))] }).then(parseCsr)).rejects.toThrow(MalformedError);
  });

  it('reads extensions (critical flag, OCTET STRING value) and the challengePassword', async () => {
    const ext = derSequence(derOid('1.2.3.5'), Uint8Array.of(0x01, 0x01, 0xff), derTlv(0x04, Uint8Array.of(5, 0)));
    const csr = verifyCsr(await csrFrom(key, { attrs: [attr(OID.challengePassword, derTlv(0x13, Buffer.from('pw'))), attr(OID.extensionRequest, derSequence(ext))] }));
    expect(csr.challengePassword).toBe('pw');
    expect(csr.extensions).toEqual([{ oid: '1.2.3.5', critical: true, value: Uint8Array.of(5, 0) }]);
  });

  it('a valid structure with a signature by another key is still bad-csr', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = await csrFrom(key, { spki: spkiOf(other.publicKey) });
    expect(parseCsr(der).signatureValid).toBe(false);
    expect(() => verifyCsr(der)).toThrow(BrskiError);
    expect(() => verifyCsr(der)).toThrow(expect.objectContaining({ code: 'bad-csr' }));
  });
});

/** Offset of the unused-bits octet of the last top-level element (the signature BIT STRING). */
function unusedBitsOffset(der: Uint8Array): number {
  // top SEQUENCE header, then info, algorithm, signature
  let p = 1;
  const len = (): number => { const f = der[p++]!; if (f < 0x80) return f; let n = 0; for (let k = 0; k < (f & 0x7f); k++) n = n * 256 + der[p++]!; return n; };
  len();
  for (let i = 0; i < 2; i++) { p++; const l = len(); p += l; }
  p++; len();
  return p;
}

describe('spkiOfKey', () => {
  it('assembles the same bytes node:crypto exports, for every named curve, public or private key, and RSA', () => {
    for (const curve of ['P-256', 'P-384', 'P-521'] as const) {
      for (let i = 0; i < 40; i++) { // 40 keys: some coordinates start with a zero octet (the JWK keeps it)
        const k = generateKeyPairSync('ec', { namedCurve: curve });
        expect(Buffer.from(spkiOfKey(k.publicKey))).toEqual(Buffer.from(spkiOf(k.publicKey)));
        expect(Buffer.from(spkiOfKey(k.privateKey))).toEqual(Buffer.from(spkiOf(k.publicKey)));
      }
    }
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(Buffer.from(spkiOfKey(rsa.publicKey))).toEqual(Buffer.from(spkiOf(rsa.publicKey)));
  });
});
