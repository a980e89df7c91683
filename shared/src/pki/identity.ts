/**
 * What BRSKI needs to know about a certificate: serial-number, MASA URL, idevid-issuer, key ids,
 * EKUs. Each certificate is parsed once (asn1js, exact bytes kept) and the result cached by
 * object (WeakMap) and by SHA-256 fingerprint (bounded Map), because the registrar asks the same
 * questions of the same IDevID several times per request.
 */
import { createHash, createPublicKey, KeyObject, type X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { MalformedError } from '../errors.ts';
import { bytesEqual, children, derOctetString, derSequence, derTlv, parseDer, rawBytes, readTlv, tagOf } from './der.ts';
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
    info = parseCertificate(new Uint8Array(cert.raw));
    if (byFingerprint.size >= FINGERPRINT_CACHE_MAX) byFingerprint.delete(byFingerprint.keys().next().value!);
    byFingerprint.set(fp, info);
  }
  byObject.set(cert, info);
  return info;
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

function timeValue(block: asn1js.AsnType | undefined): Date {
  if (block instanceof asn1js.UTCTime || block instanceof asn1js.GeneralizedTime) return block.toDate();
  throw new MalformedError('certificate: validity time expected');
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

function parseCertificate(der: Uint8Array): CertificateInfo {
  const top = children(parseDer(der, 'certificate'), 'Certificate');
  const tbsBlock = top[0];
  if (!tbsBlock) throw new MalformedError('certificate: no TBSCertificate');
  const tbs = children(tbsBlock, 'TBSCertificate');
  let i = tagOf(tbs[0]!).cls === 3 ? 1 : 0; // optional [0] version
  const serial = tbs[i++];
  i++; // signature AlgorithmIdentifier
  const issuer = tbs[i++];
  const validity = tbs[i++];
  const subject = tbs[i++];
  const spki = tbs[i++];
  if (!(serial instanceof asn1js.Integer) || !issuer || !validity || !subject || !spki) throw new MalformedError('certificate: truncated TBSCertificate');
  const [notBefore, notAfter] = children(validity, 'Validity');
  const spkiParts = children(spki, 'SubjectPublicKeyInfo');
  if (!(spkiParts[1] instanceof asn1js.BitString)) throw new MalformedError('certificate: subjectPublicKey BIT STRING expected');
  let extensions = new Map<string, ExtensionValue>();
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
    subjectPublicKey: new Uint8Array(spkiParts[1].valueBlock.valueHexView),
    extensions,
    isCa: false,
    ekus: [],
  };
  decodeKnownExtensions(info);
  return info;
}

function decodeKnownExtensions(info: CertificateInfo): void {
  const ext = (oid: string): asn1js.AsnType | undefined => {
    const e = info.extensions.get(oid);
    return e ? parseDer(e.value, `extension ${oid}`) : undefined;
  };
  const ski = ext(OID.subjectKeyIdentifier);
  if (ski) {
    if (!(ski instanceof asn1js.OctetString)) throw new MalformedError('SubjectKeyIdentifier: OCTET STRING expected');
    info.subjectKeyId = new Uint8Array(ski.valueBlock.valueHexView);
  }
  const aki = ext(OID.authorityKeyIdentifier);
  if (aki) {
    const keyId = children(aki, 'AuthorityKeyIdentifier').find((c) => tagOf(c).cls === 3 && tagOf(c).number === 0);
    // [0] IMPLICIT OCTET STRING: primitive context tag, its value bytes are the key id
    if (keyId) info.authorityKeyId = new Uint8Array((keyId as asn1js.Primitive).valueBlock.valueHexView);
  }
  const bc = ext(OID.basicConstraints);
  if (bc) {
    for (const c of children(bc, 'BasicConstraints')) {
      if (c instanceof asn1js.Boolean) info.isCa = c.valueBlock.value;
      if (c instanceof asn1js.Integer) info.pathLength = c.valueBlock.valueDec;
    }
  }
  const eku = ext(OID.extKeyUsage);
  if (eku) {
    info.ekus = children(eku, 'ExtKeyUsage').map((c) => {
      if (!(c instanceof asn1js.ObjectIdentifier)) throw new MalformedError('ExtKeyUsage: OID expected');
      return c.valueBlock.toString();
    });
  }
  const masa = ext(OID.masaUrl);
  if (masa) {
    if (!(masa instanceof asn1js.IA5String)) throw new MalformedError('MASA URL extension: IA5String expected');
    const url = masa.valueBlock.value;
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
  const outer = readTlv(v);
  if (!outer || outer.start + outer.length !== v.length) return undefined;
  if (outer.tag === 0x30) return v;
  if (outer.tag !== 0x04) return undefined;
  const inner = v.subarray(outer.start);
  const seq = readTlv(inner);
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
