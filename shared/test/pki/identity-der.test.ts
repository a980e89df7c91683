/**
 * certificateInfo on the TLV reader against the asn1js parser it replaced (kept below as the
 * reference): identical results on every certificate of the published vectors and of the test
 * PKI, and MalformedError on malformed input.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/errors.ts';
import { children as tlvChildren, raw, readTlv } from '../../src/envelope/der.ts';
import { children, derOctetString, derOid, derSequence, derTlv, parseDer, rawBytes, tagOf } from '../../src/pki/der.ts';
import {
  certificateInfo, certificateInfoFromDer, clearCertificateInfoCache, masaUrlExtension, OID, parseExtensions, parseName,
  type CertificateInfo,
} from '../../src/pki/index.ts';
import { makeTestPki, VECTORS } from './fixtures.ts';

// ---- reference: the asn1js parser of identity.ts before the TLV reader (commit 1752bae) ----------

function timeValue(block: asn1js.AsnType | undefined): Date {
  if (block instanceof asn1js.UTCTime || block instanceof asn1js.GeneralizedTime) return block.toDate();
  throw new MalformedError('certificate: validity time expected');
}

function referenceInfo(der: Uint8Array): CertificateInfo {
  const top = children(parseDer(der, 'certificate'), 'Certificate');
  const tbsBlock = top[0]!;
  const tbs = children(tbsBlock, 'TBSCertificate');
  let i = tagOf(tbs[0]!).cls === 3 ? 1 : 0;
  const serial = tbs[i++] as asn1js.Integer;
  i++;
  const issuer = tbs[i++]!;
  const [notBefore, notAfter] = children(tbs[i++]!, 'Validity');
  const subject = tbs[i++]!;
  const spki = tbs[i++]!;
  const spkiParts = children(spki, 'SubjectPublicKeyInfo');
  let extensions = new Map<string, { critical: boolean; value: Uint8Array }>();
  for (; i < tbs.length; i++) {
    const t = tagOf(tbs[i]!);
    if (t.cls === 3 && t.number === 3) extensions = parseExtensions(children(tbs[i]!, 'extensions')[0]!);
  }
  const info: CertificateInfo = {
    tbs: rawBytes(tbsBlock),
    serialHex: Buffer.from(serial.valueBlock.valueHexView).toString('hex').toUpperCase(),
    issuerDer: rawBytes(issuer),
    subjectDer: rawBytes(subject),
    subject: parseName(subject),
    notBefore: timeValue(notBefore),
    notAfter: timeValue(notAfter),
    spkiDer: rawBytes(spki),
    subjectPublicKey: new Uint8Array((spkiParts[1] as asn1js.BitString).valueBlock.valueHexView),
    extensions,
    isCa: false,
    ekus: [],
  };
  const ext = (oid: string) => { const e = extensions.get(oid); return e ? parseDer(e.value, oid) : undefined; };
  const ski = ext(OID.subjectKeyIdentifier);
  if (ski) info.subjectKeyId = new Uint8Array((ski as asn1js.OctetString).valueBlock.valueHexView);
  const aki = ext(OID.authorityKeyIdentifier);
  if (aki) {
    const keyId = children(aki, 'AKI').find((c) => tagOf(c).cls === 3 && tagOf(c).number === 0);
    if (keyId) info.authorityKeyId = new Uint8Array((keyId as asn1js.Primitive).valueBlock.valueHexView);
  }
  const bc = ext(OID.basicConstraints);
  if (bc) {
    for (const c of children(bc, 'BC')) {
      if (c instanceof asn1js.Boolean) info.isCa = c.valueBlock.value;
      if (c instanceof asn1js.Integer) info.pathLength = c.valueBlock.valueDec;
    }
  }
  const eku = ext(OID.extKeyUsage);
  if (eku) info.ekus = children(eku, 'EKU').map((c) => (c as asn1js.ObjectIdentifier).valueBlock.toString());
  const masa = ext(OID.masaUrl);
  if (masa) info.masaUrl = (masa as asn1js.IA5String).valueBlock.value;
  return info;
}

// ---- every certificate in the vectors --------------------------------------------------------

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function x5cOf(value: unknown, out: string[]): void {
  if (Array.isArray(value)) value.forEach((v) => x5cOf(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'x5c' && Array.isArray(v)) out.push(...v.filter((s): s is string => typeof s === 'string'));
      else x5cOf(v, out);
    }
  }
}

/** [label, DER] of every certificate that node:crypto accepts: PEM blocks, DER files, JWS x5c entries. */
function vectorCertificates(): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  const add = (label: string, der: Uint8Array) => {
    try { new X509Certificate(der); } catch { return; } // not a certificate (CSR, CMS, key...)
    out.push([label, der]);
  };
  for (const file of walk(VECTORS)) {
    const name = file.slice(VECTORS.length + 1);
    const bytes = readFileSync(file);
    const text = bytes.toString('latin1');
    for (const [n, m] of [...text.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g)].entries()) {
      add(`${name} #${n}`, Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    }
    if (/\.(der|crt|cer)$/.test(name) && bytes[0] === 0x30) add(name, bytes);
    if (name.endsWith('.json')) {
      const x5c: string[] = [];
      try { x5cOf(JSON.parse(text), x5c); } catch { /* not JSON */ }
      x5c.forEach((b64, n) => add(`${name} x5c#${n}`, Buffer.from(b64, 'base64')));
      // header objects inside JWS JSON serialization are base64url-encoded JSON
      for (const m of text.matchAll(/"protected"\s*:\s*"([A-Za-z0-9_-]+)"/g)) {
        const h: string[] = [];
        try { x5cOf(JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8')), h); } catch { /* not JSON */ }
        h.forEach((b64, n) => add(`${name} protected x5c#${n}`, Buffer.from(b64, 'base64')));
      }
    }
  }
  return out;
}

describe('certificateInfo (TLV reader) equals the asn1js parser', () => {
  const certs = vectorCertificates();

  it('finds the published certificates', () => {
    expect(certs.length).toBeGreaterThanOrEqual(25);
    const labels = certs.map(([l]) => l).join('\n');
    for (const f of ['rfc8995/idevid_00-D0-E5-F2-00-02.crt', 'cbrski/pledge.pem', 'rfc8366bis/idevid1-example.pem']) expect(labels).toContain(f);
  });

  it('identical fields for every vector certificate', () => {
    for (const [label, der] of certs) {
      expect(certificateInfoFromDer(der), label).toStrictEqual(referenceInfo(der));
      clearCertificateInfoCache();
      expect(certificateInfo(new X509Certificate(der)), label).toStrictEqual(referenceInfo(der));
    }
  });

  it('identical fields for the test PKI (AKI, SKI, pathLength, EKUs, MASA URL)', async () => {
    const pki = await makeTestPki();
    for (const c of [pki.root, pki.idevidCa, pki.idevid, pki.registrar]) {
      expect(certificateInfoFromDer(c.raw)).toStrictEqual(referenceInfo(c.raw));
    }
  });
});

describe('certificateInfoFromDer refuses malformed certificates', () => {
  const der = new Uint8Array(readFileSync(`${VECTORS}/cbrski/pledge.der`));
  const info = certificateInfoFromDer(der);

  /** Replaces the first occurrence of `from` (after the TBS header) with `to` of the same length. */
  const patched = (from: Uint8Array, to: Uint8Array): Uint8Array => {
    const at = Buffer.from(der).indexOf(Buffer.from(from), 4);
    expect(at).toBeGreaterThan(0);
    const out = new Uint8Array(der);
    out.set(to, at);
    return out;
  };

  it('garbage, empty, truncated and trailing bytes', () => {
    for (const bad of [new Uint8Array(0), Uint8Array.of(1, 2, 3), Uint8Array.of(0x30, 0x03, 1, 2, 3), der.subarray(0, der.length - 1),
      Uint8Array.from([...der, 0]), der.subarray(0, 200)]) {
      expect(() => certificateInfoFromDer(bad)).toThrow(MalformedError);
    }
  });

  it('a SEQUENCE that is not a certificate', () => {
    expect(() => certificateInfoFromDer(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01))).toThrow(MalformedError);
    expect(() => certificateInfoFromDer(info.tbs)).toThrow(MalformedError);
  });

  it('validity time not in RFC 5280 form or out of range', () => {
    const nb = Buffer.from(der).indexOf(0x17, 4); // first UTCTime: notBefore
    const s = Buffer.from(der.subarray(nb + 2, nb + 15)).toString('latin1');
    for (const bad of [`${s.slice(0, 12)}X`, `${s.slice(0, 2)}13${s.slice(4)}`, `${s.slice(0, 4)}32${s.slice(6)}`, `${s.slice(0, 6)}25${s.slice(8)}`]) {
      expect(() => certificateInfoFromDer(patched(Buffer.from(s), Buffer.from(bad)))).toThrow(MalformedError);
    }
  });

  /** The same certificate with its extensions replaced (signature no longer valid; the parser does not check it). */
  const withExtensions = (...exts: Uint8Array[]): Uint8Array => {
    const cert = readTlv(der, 0);
    const [tbs, alg, sig] = tlvChildren(der, cert);
    const fields = tlvChildren(der, tbs!).filter((t) => !(t.cls === 2 && t.tag === 3)).map((t) => raw(der, t));
    return derSequence(derSequence(...fields, derTlv(0xa3, derSequence(...exts))), raw(der, alg!), raw(der, sig!));
  };
  const ext = (oid: string, value: Uint8Array, critical?: Uint8Array) =>
    derSequence(derOid(oid), ...(critical ? [critical] : []), derOctetString(value));
  const TRUE = Uint8Array.of(0x01, 0x01, 0xff);

  it('rebuilt certificate with well-formed extensions parses (control for the cases below)', () => {
    const ok = certificateInfoFromDer(withExtensions(ext(OID.basicConstraints, derSequence(TRUE, Uint8Array.of(2, 1, 3)), TRUE),
      ext(OID.subjectKeyIdentifier, derOctetString(Uint8Array.of(1, 2, 3)))));
    expect(ok).toMatchObject({ isCa: true, pathLength: 3, subjectKeyId: Uint8Array.of(1, 2, 3), subject: info.subject });
    expect(ok.extensions.get(OID.basicConstraints)?.critical).toBe(true);
  });

  it('duplicated, misshapen or mistyped extensions', () => {
    const ski = ext(OID.subjectKeyIdentifier, derOctetString(Uint8Array.of(1)));
    for (const bad of [
      [ski, ski], // RFC 5280 §4.2: at most one instance
      [derSequence(derOid(OID.subjectKeyIdentifier))], // no extnValue
      [ext(OID.subjectKeyIdentifier, derOctetString(Uint8Array.of(1)), Uint8Array.of(0x02, 0x01, 0x01))], // critical not BOOLEAN
      [ext(OID.subjectKeyIdentifier, derTlv(0x02, Uint8Array.of(1)))], // SKI not OCTET STRING
      [ext(OID.subjectKeyIdentifier, Uint8Array.from([...derOctetString(Uint8Array.of(1)), 0]))], // trailing byte in extnValue
      [ext(OID.authorityKeyIdentifier, derSequence(derTlv(0xa0, derOctetString(Uint8Array.of(1)))))], // keyIdentifier constructed
      [ext(OID.basicConstraints, derSequence(Uint8Array.of(0x01, 0x02, 0xff, 0xff)))], // BOOLEAN of two octets
      [ext(OID.basicConstraints, derSequence(Uint8Array.of(0x02, 0x01, 0xff)))], // negative pathLenConstraint
      [ext(OID.extKeyUsage, derSequence(derOctetString(Uint8Array.of(1))))], // EKU not an OID
      [ext(OID.masaUrl, derTlv(0x16, new Uint8Array(0)))], // empty MASA URL
    ]) {
      expect(() => certificateInfoFromDer(withExtensions(...bad))).toThrow(MalformedError);
    }
  });

  it('a MASA URL extension that is not a printable IA5String', () => {
    expect(info.masaUrl).toBe('masa.stok.nl');
    const ext = masaUrlExtension('masa.stok.nl');
    const value = ext.value;
    expect(() => certificateInfoFromDer(patched(value, Uint8Array.from([0x0c, ...value.subarray(1)])))).toThrow(MalformedError); // UTF8String
    expect(() => certificateInfoFromDer(patched(value, Uint8Array.from([...value.subarray(0, 3), 0x20, ...value.subarray(4)])))).toThrow(MalformedError);
  });

  it('subject attribute value that is not a string', () => {
    const cn = Buffer.from('JADA123456789');
    const at = Buffer.from(der).indexOf(cn);
    const out = new Uint8Array(der);
    out[at - 2] = 0x04; // PrintableString → OCTET STRING
    expect(() => certificateInfoFromDer(out)).toThrow(MalformedError);
  });
});
