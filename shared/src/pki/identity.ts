/**
 * What BRSKI needs to know about a certificate: serial-number, MASA URL, idevid-issuer, key ids,
 * EKUs. Each certificate is parsed once (TLV reader, exact bytes kept) and the result cached by
 * object (WeakMap) and by SHA-256 fingerprint (bounded Map), because the registrar asks the same
 * questions of the same IDevID several times per request.
 */
import { createHash, createPublicKey, KeyObject, type X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { MalformedError } from '../errors.ts';
import {
  children as tlvChildren, contents, expectUniversal, isContext, isUniversal, oid as oidOf, raw, readTlv, smallInteger, UNIVERSAL, type Tlv,
} from '../envelope/der.ts';
import { assertWellFormed, bytesEqual, children, derOctetString, derSequence, derTlv, parseDer, readName, readTlv as readTlvHeader } from './der.ts';
import { NAME_ATTRIBUTE_BY_OID, OID } from './oids.ts';

export interface ExtensionValue { critical: boolean; /** content of extnValue (inside the OCTET STRING) */ value: Uint8Array }

export interface CertificateInfo {
  tbs: Uint8Array;
  serialHex: string;
  issuerDer: Uint8Array;
  subjectDer: Uint8Array;
  /** [attribute short name (or dotted OID), value] in DER order. */
  subject: Array<[string, string]>;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Uint8Array;
  /** subjectPublicKey BIT STRING value (no unused-bits octet), the input of RFC 5280 key-id method 1. */
  subjectPublicKey: Uint8Array;
  extensions: ReadonlyMap<string, ExtensionValue>;
  subjectKeyId?: Uint8Array;
  authorityKeyId?: Uint8Array;
  isCa: boolean;
  pathLength?: number;
  ekus: readonly string[];
  masaUrl?: string;
}

const byObject = new WeakMap<X509Certificate, CertificateInfo>();
const byFingerprint = new Map<string, CertificateInfo>();
const FINGERPRINT_CACHE_MAX = 4096;

/** Parsed view of `cert`, cached. Throws MalformedError if the DER does not have X.509 shape. */
export function certificateInfo(cert: X509Certificate): CertificateInfo {
  const hit = byObject.get(cert);
  if (hit) return hit;
  const fp = cert.fingerprint256;
  let info = byFingerprint.get(fp);
  if (!info) {
    info = parseCertificate(cert.raw);
    if (byFingerprint.size >= FINGERPRINT_CACHE_MAX) byFingerprint.delete(byFingerprint.keys().next().value!);
    byFingerprint.set(fp, info);
  }
  byObject.set(cert, info);
  return info;
}

/** Parsed view of DER certificate bytes (not cached). Throws MalformedError if they do not have X.509 shape. */
export function certificateInfoFromDer(der: Uint8Array): CertificateInfo {
  return parseCertificate(der);
}

/** Forget every parsed certificate (benchmarks of cold paths, tests); the WeakMap entries go with their objects. */
export function clearCertificateInfoCache(): void { byFingerprint.clear(); }

function stringValue(block: asn1js.AsnType): string {
  const v = (block as { valueBlock?: { value?: unknown } }).valueBlock?.value;
  if (typeof v !== 'string') throw new MalformedError('certificate: string attribute value expected');
  return v;
}

/** Name ::= SEQUENCE OF SET OF AttributeTypeAndValue → [[shortName|oid, value], ...]. */
export function parseName(block: asn1js.AsnType): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rdn of children(block, 'Name')) {
    for (const atv of children(rdn, 'RDN')) {
      const [type, value] = children(atv, 'AttributeTypeAndValue');
      if (!(type instanceof asn1js.ObjectIdentifier) || !value) throw new MalformedError('Name: malformed attribute');
      const oid = type.valueBlock.toString();
      out.push([NAME_ATTRIBUTE_BY_OID[oid] ?? oid, stringValue(value)]);
    }
  }
  return out;
}

/** Parses Extensions ::= SEQUENCE OF Extension into a map (duplicates are malformed, RFC 5280 §4.2). */
export function parseExtensions(block: asn1js.AsnType): Map<string, ExtensionValue> {
  const map = new Map<string, ExtensionValue>();
  for (const ext of children(block, 'Extensions')) {
    const parts = children(ext, 'Extension');
    const id = parts[0];
    const critical = parts.length === 3 && parts[1] instanceof asn1js.Boolean ? parts[1].valueBlock.value : false;
    const octets = parts[parts.length - 1];
    if (!(id instanceof asn1js.ObjectIdentifier) || !(octets instanceof asn1js.OctetString)) throw new MalformedError('Extension: malformed');
    const oid = id.valueBlock.toString();
    if (map.has(oid)) throw new MalformedError(`Extension ${oid} appears twice`);
    map.set(oid, { critical, value: new Uint8Array(octets.valueBlock.valueHexView) });
  }
  return map;
}

// Certificate fields on the TLV reader of envelope/der.ts. Why not asn1js: it builds an object per
// element (~500 µs per IDevID, paid on the first sight of every pledge); the reader returns
// offsets and the fields below are decoded directly. Shapes are checked strictly (RFC 5280 §4.1):
// anything else is MalformedError.

const GENERALIZED_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const UTC_RE = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 → 20YY) or GeneralizedTime YYYYMMDDHHMMSSZ. */
function readTime(buf: Uint8Array, t: Tlv | undefined): Date {
  if (!t || t.cls !== 0 || t.constructed || (t.tag !== UNIVERSAL.utcTime && t.tag !== UNIVERSAL.generalizedTime)) {
    throw new MalformedError('certificate: validity time expected');
  }
  const s = Buffer.from(buf.buffer, buf.byteOffset + t.contentStart, t.contentEnd - t.contentStart).toString('latin1');
  const m = (t.tag === UNIVERSAL.utcTime ? UTC_RE : GENERALIZED_RE).exec(s);
  if (!m) throw new MalformedError(`certificate: validity time "${s}" is not in RFC 5280 form`);
  let year = Number(m[1]);
  if (t.tag === UNIVERSAL.utcTime) year += year >= 50 ? 1900 : 2000;
  const [mo, d, h, mi, sec] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, sec));
  date.setUTCFullYear(year, mo - 1, d); // years 0–99 stay literal (Date.UTC maps them to 19xx)
  if (mo < 1 || mo > 12 || date.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) throw new MalformedError(`certificate: validity time "${s}" out of range`);
  return date;
}

function primitive(buf: Uint8Array, t: Tlv | undefined, tag: number, what: string): Uint8Array {
  if (!t || !isUniversal(t, tag) || t.constructed) throw new MalformedError(`${what} expected`);
  return contents(buf, t);
}

/** BIT STRING value without its unused-bits octet; keys and signatures have no unused bits. */
function bitStringBytes(buf: Uint8Array, t: Tlv | undefined, what: string): Uint8Array {
  const b = primitive(buf, t, UNIVERSAL.bitString, `${what}: BIT STRING`);
  if (b.length === 0 || b[0] !== 0) throw new MalformedError(`${what}: BIT STRING with unused bits`);
  return b.subarray(1);
}

function readBoolean(buf: Uint8Array, t: Tlv, what: string): boolean {
  const b = primitive(buf, t, 1, `${what}: BOOLEAN`);
  if (b.length !== 1) throw new MalformedError(`${what}: BOOLEAN of length ${b.length}`);
  return b[0] !== 0;
}

const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, into a map (duplicates are malformed, RFC 5280 §4.2). */
function readExtensions(buf: Uint8Array, t: Tlv): Map<string, ExtensionValue> {
  const map = new Map<string, ExtensionValue>();
  for (const ext of tlvChildren(buf, expectUniversal(t, UNIVERSAL.sequence, 'Extensions'))) {
    const parts = tlvChildren(buf, expectUniversal(ext, UNIVERSAL.sequence, 'Extension'));
    if (parts.length !== 2 && parts.length !== 3) throw new MalformedError('Extension: malformed');
    const oid = oidOf(buf, parts[0]!);
    const critical = parts.length === 3 ? readBoolean(buf, parts[1]!, 'Extension critical') : false;
    const value = primitive(buf, parts[parts.length - 1], UNIVERSAL.octetString, 'Extension: extnValue OCTET STRING');
    if (map.has(oid)) throw new MalformedError(`Extension ${oid} appears twice`);
    map.set(oid, { critical, value: copy(value) });
  }
  return map;
}

/** The single element of an extension value (no trailing bytes). */
function extensionElement(value: Uint8Array, oid: string): Tlv {
  if (value.length === 0) throw new MalformedError(`extension ${oid}: empty input`);
  const t = readTlv(value, 0);
  if (t.end !== value.length) throw new MalformedError(`extension ${oid}: ${value.length - t.end} trailing bytes after the DER element`);
  assertWellFormed(value, t);
  return t;
}

function parseCertificate(der: Uint8Array): CertificateInfo {
  if (der.length === 0) throw new MalformedError('certificate: empty input');
  const cert = readTlv(der, 0);
  if (cert.end !== der.length) throw new MalformedError(`certificate: ${der.length - cert.end} trailing bytes after the DER element`);
  assertWellFormed(der, cert); // everything below decodes, as asn1js's full parse required
  const top = tlvChildren(der, expectUniversal(cert, UNIVERSAL.sequence, 'Certificate'));
  if (top.length !== 3) throw new MalformedError('certificate: SEQUENCE of TBSCertificate, signatureAlgorithm, signature expected');
  const tbsTlv = expectUniversal(top[0], UNIVERSAL.sequence, 'TBSCertificate');
  const tbs = tlvChildren(der, tbsTlv);
  let i = 0;
  if (isContext(tbs[0], 0)) { // [0] EXPLICIT Version
    const v = tlvChildren(der, tbs[0]!);
    if (v.length !== 1) throw new MalformedError('certificate: malformed version');
    smallInteger(der, v[0]!);
    i = 1;
  }
  const serial = primitive(der, tbs[i++], UNIVERSAL.integer, 'certificate: serialNumber INTEGER');
  if (serial.length === 0) throw new MalformedError('certificate: empty serialNumber');
  expectUniversal(tbs[i++], UNIVERSAL.sequence, 'certificate: signature AlgorithmIdentifier');
  const issuer = expectUniversal(tbs[i++], UNIVERSAL.sequence, 'certificate: issuer Name');
  const validity = tlvChildren(der, expectUniversal(tbs[i++], UNIVERSAL.sequence, 'certificate: Validity'));
  if (validity.length !== 2) throw new MalformedError('certificate: Validity of two times expected');
  const subject = expectUniversal(tbs[i++], UNIVERSAL.sequence, 'certificate: subject Name');
  const spki = expectUniversal(tbs[i++], UNIVERSAL.sequence, 'certificate: SubjectPublicKeyInfo');
  const spkiParts = tlvChildren(der, spki);
  if (spkiParts.length !== 2) throw new MalformedError('certificate: SubjectPublicKeyInfo of algorithm and key expected');
  expectUniversal(spkiParts[0], UNIVERSAL.sequence, 'certificate: SubjectPublicKeyInfo algorithm');
  // issuerUniqueID [1], subjectUniqueID [2], extensions [3], in this order, each at most once
  let extensions = new Map<string, ExtensionValue>();
  let last = 0;
  for (; i < tbs.length; i++) {
    const t = tbs[i]!;
    if (t.cls !== 2 || t.tag <= last || t.tag > 3) throw new MalformedError('certificate: unexpected element after SubjectPublicKeyInfo');
    last = t.tag;
    if (t.tag === 3) {
      const inner = tlvChildren(der, t);
      if (inner.length !== 1) throw new MalformedError('certificate: [3] must hold one Extensions SEQUENCE');
      extensions = readExtensions(der, inner[0]!);
    }
  }
  const info: CertificateInfo = {
    tbs: copy(raw(der, tbsTlv)),
    serialHex: Buffer.from(serial.buffer, serial.byteOffset, serial.byteLength).toString('hex').toUpperCase(),
    issuerDer: copy(raw(der, issuer)),
    subjectDer: copy(raw(der, subject)),
    subject: readName(der, subject),
    notBefore: readTime(der, validity[0]),
    notAfter: readTime(der, validity[1]),
    spkiDer: copy(raw(der, spki)),
    subjectPublicKey: copy(bitStringBytes(der, spkiParts[1], 'certificate: subjectPublicKey')),
    extensions,
    isCa: false,
    ekus: [],
  };
  readName(der, issuer); // the issuer must be a well-formed Name too
  decodeKnownExtensions(info);
  return info;
}

function decodeKnownExtensions(info: CertificateInfo): void {
  const ext = (oid: string): { v: Uint8Array; t: Tlv } | undefined => {
    const e = info.extensions.get(oid);
    return e ? { v: e.value, t: extensionElement(e.value, oid) } : undefined;
  };
  const ski = ext(OID.subjectKeyIdentifier);
  if (ski) info.subjectKeyId = copy(primitive(ski.v, ski.t, UNIVERSAL.octetString, 'SubjectKeyIdentifier: OCTET STRING'));
  const aki = ext(OID.authorityKeyIdentifier);
  if (aki) {
    const parts = tlvChildren(aki.v, expectUniversal(aki.t, UNIVERSAL.sequence, 'AuthorityKeyIdentifier SEQUENCE'));
    const keyId = parts.find((c) => isContext(c, 0));
    // keyIdentifier [0] IMPLICIT OCTET STRING: primitive context tag, its contents are the key id
    if (keyId) {
      if (keyId.constructed) throw new MalformedError('AuthorityKeyIdentifier: keyIdentifier must be primitive');
      info.authorityKeyId = copy(contents(aki.v, keyId));
    }
  }
  const bc = ext(OID.basicConstraints);
  if (bc) {
    for (const c of tlvChildren(bc.v, expectUniversal(bc.t, UNIVERSAL.sequence, 'BasicConstraints SEQUENCE'))) {
      if (isUniversal(c, 1)) info.isCa = readBoolean(bc.v, c, 'BasicConstraints cA');
      else if (isUniversal(c, UNIVERSAL.integer)) info.pathLength = smallInteger(bc.v, c);
      else throw new MalformedError('BasicConstraints: unexpected element');
    }
  }
  const eku = ext(OID.extKeyUsage);
  if (eku) {
    info.ekus = tlvChildren(eku.v, expectUniversal(eku.t, UNIVERSAL.sequence, 'ExtKeyUsage SEQUENCE')).map((c) => {
      if (!isUniversal(c, UNIVERSAL.oid)) throw new MalformedError('ExtKeyUsage: OID expected');
      return oidOf(eku.v, c);
    });
  }
  const masa = ext(OID.masaUrl);
  if (masa) {
    const b = primitive(masa.v, masa.t, 22, 'MASA URL extension: IA5String');
    const url = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
    if (!/^[\x21-\x7e]+$/.test(url)) throw new MalformedError('MASA URL extension: empty or not printable ASCII');
    info.masaUrl = url;
  }
}

/** The subject serialNumber attribute (2.5.4.5), the BRSKI serial-number (digest §8.3). */
export function serialNumberOf(cert: X509Certificate): string | undefined {
  return certificateInfo(cert).subject.find(([k]) => k === 'serialNumber')?.[1];
}

/** Content of the id-pe-masa-url extension (IA5String), if present. */
export function masaUrlOf(cert: X509Certificate): string | undefined {
  return certificateInfo(cert).masaUrl;
}

const AUTHORITY_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * Base URL of the MASA's BRSKI resources, without a trailing slash (callers append
 * `/requestvoucher`, `/requestauditlog`). Digest §8.2: an authority-only value implies
 * `https://<authority>/.well-known/brski`; a full URI is used as the base (Fountain behaviour);
 * anything but https is refused because the registrar-MASA link MUST be HTTPS.
 */
export function masaBaseUrl(extValue: string): string {
  const v = extValue.trim();
  if (!v.includes('/')) {
    const m = AUTHORITY_RE.exec(v);
    if (!m || (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535))) {
      throw new MalformedError(`MASA URL "${extValue}": not a host[:port] authority`);
    }
    return new URL(`https://${v}/.well-known/brski`).href;
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch (e) {
    throw new MalformedError(`MASA URL "${extValue}": not a URI`, { cause: e });
  }
  if (url.protocol !== 'https:') throw new MalformedError(`MASA URL "${extValue}": scheme ${url.protocol} refused, HTTPS required`);
  if (url.username || url.password || url.search || url.hash || !url.hostname) {
    throw new MalformedError(`MASA URL "${extValue}": credentials, query or fragment not allowed`);
  }
  return url.href.replace(/\/+$/, '');
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifierOf(key: X509Certificate | KeyObject): Uint8Array {
  return key instanceof KeyObject ? keyIdentifierFromSpki(spkiDer(key))
    : new Uint8Array(createHash('sha1').update(certificateInfo(key).subjectPublicKey).digest());
}

/** Method-1 key identifier from DER SubjectPublicKeyInfo bytes. */
export function keyIdentifierFromSpki(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(subjectPublicKeyBits(spki)).digest());
}

function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const bits = children(parseDer(spki, 'SubjectPublicKeyInfo'), 'SubjectPublicKeyInfo')[1];
  if (!(bits instanceof asn1js.BitString)) throw new MalformedError('SubjectPublicKeyInfo: BIT STRING expected');
  return new Uint8Array(bits.valueBlock.valueHexView);
}

/**
 * idevid-issuer (digest §8.4): the AKI extnValue OCTET STRING with tag and length
 * (`04 18 30 16 80 14 <keyid>` for a 20-byte key id). Without an AKI, the same structure around
 * SHA-1 of the IDevID's own public key (8366bis text, read literally — digest §11 #5).
 */
export function idevidIssuerOf(cert: X509Certificate): Uint8Array {
  const aki = certificateInfo(cert).extensions.get(OID.authorityKeyIdentifier);
  if (aki) return derOctetString(aki.value);
  return derOctetString(derSequence(derTlv(0x80, keyIdentifierOf(cert))));
}

/** The AuthorityKeyIdentifier SEQUENCE inside either framing, or undefined if neither. */
function akiSequence(v: Uint8Array): Uint8Array | undefined {
  const outer = readTlvHeader(v);
  if (!outer || outer.start + outer.length !== v.length) return undefined;
  if (outer.tag === 0x30) return v;
  if (outer.tag !== 0x04) return undefined;
  const inner = v.subarray(outer.start);
  const seq = readTlvHeader(inner);
  return seq && seq.tag === 0x30 && seq.start + seq.length === inner.length ? inner : undefined;
}

/** Compares idevid-issuer values, accepting the bare SEQUENCE form too (digest §11 #4). */
export function idevidIssuerEquals(a: Uint8Array, b: Uint8Array): boolean {
  const sa = akiSequence(a);
  const sb = akiSequence(b);
  return sa !== undefined && sb !== undefined && bytesEqual(sa, sb);
}

export function subjectKeyIdOf(cert: X509Certificate): Uint8Array | undefined {
  return certificateInfo(cert).subjectKeyId;
}

/** DER SubjectPublicKeyInfo: the certificate's own bytes, or the key's export. */
export function spkiDer(source: X509Certificate | KeyObject): Uint8Array {
  if (source instanceof KeyObject) {
    const pub = source.type === 'private' ? createPublicKey(source) : source;
    return new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
  }
  return certificateInfo(source).spkiDer;
}

const spkiSha256ByCert = new WeakMap<X509Certificate, Uint8Array>();

export function spkiSha256(source: X509Certificate | KeyObject): Uint8Array {
  if (source instanceof KeyObject) return new Uint8Array(createHash('sha256').update(spkiDer(source)).digest());
  // Per certificate object (immutable); asked on every voucher for the IDevID and the RVR chain.
  let h = spkiSha256ByCert.get(source);
  if (!h) { h = new Uint8Array(createHash('sha256').update(spkiDer(source)).digest()); spkiSha256ByCert.set(source, h); }
  return new Uint8Array(h); // a copy: callers may keep or alter what they get
}

/** Domain identity for pinning/audit: the SKI if present, else SHA-256 of the SPKI. */
export function domainIdOf(cert: X509Certificate): Uint8Array {
  return subjectKeyIdOf(cert) ?? spkiSha256(cert);
}

export function hasEku(cert: X509Certificate, oid: string): boolean {
  return certificateInfo(cert).ekus.includes(oid);
}
