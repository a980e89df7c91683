/**
 * Encoders for names and the X.509 extensions our profiles use, assembled as DER pieces: every
 * issuance encodes a name and several extensions, and building asn1js/pkijs object trees for them
 * cost more than the signature. (Names were never encoded with pkijs RelativeDistinguishedNames,
 * whose toSchema puts every attribute into one multi-valued RDN instead of one RDN per attribute.)
 * Parsing SANs still uses pkijs: it is off the hot path.
 */
import { isIP } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { derOctetString, derOid, derSequence, derTlv } from './der.ts';
import { NAME_ATTRIBUTE_OID, OID } from './oids.ts';

/** `[['CN','x'],['serialNumber','y'], …]`, most significant first; unknown keys must be dotted OIDs. */
export type DistinguishedName = ReadonlyArray<readonly [string, string]>;

export interface ExtensionInput { oid: string; critical?: boolean; /** extnValue content (DER of the extension's type) */ value: Uint8Array }

export interface SubjectAltName { dns?: readonly string[]; ip?: readonly string[]; uri?: readonly string[] }

export type KeyUsageName = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';
const KEY_USAGE_BIT: Record<KeyUsageName, number> = {
  digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6,
};

const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]+$/;
const IA5_RE = /^[\x00-\x7f]*$/;

const utf8 = (v: string): Uint8Array => Buffer.from(v, 'utf8');
const ascii = (v: string): Uint8Array => Buffer.from(v, 'latin1');

function attributeValue(oid: string, value: string): Uint8Array {
  if (value.length === 0) throw new TypeError(`empty value for name attribute ${oid}`);
  // X520SerialNumber and countryName are PrintableString-only (RFC 5280 App. A; 802.1AR serial).
  if (oid === NAME_ATTRIBUTE_OID.serialNumber || oid === NAME_ATTRIBUTE_OID.C) {
    if (!PRINTABLE_RE.test(value)) throw new TypeError(`name attribute ${oid}: "${value}" is not a PrintableString`);
    return derTlv(0x13, ascii(value));
  }
  if (oid === NAME_ATTRIBUTE_OID.DC || oid === NAME_ATTRIBUTE_OID.emailAddress) {
    if (!IA5_RE.test(value)) throw new TypeError(`name attribute ${oid}: "${value}" is not an IA5String`);
    return derTlv(0x16, ascii(value));
  }
  if (/\p{Cs}/u.test(value)) throw new TypeError(`name attribute ${oid}: lone surrogate in "${value}"`);
  return derTlv(0x0c, utf8(value));
}

/**
 * DER Name with one single-valued RDN per entry. Assembled by hand (DER pieces) rather than with
 * asn1js objects: names are encoded on every issuance and CSR (~30 µs → ~2 µs).
 */
export function encodeName(dn: DistinguishedName): Uint8Array {
  if (dn.length === 0) throw new TypeError('distinguished name must not be empty');
  const rdns = dn.map(([key, value]) => {
    const oid = (NAME_ATTRIBUTE_OID as Record<string, string>)[key] ?? key;
    if (!/^\d+(\.\d+)+$/.test(oid)) throw new TypeError(`unknown name attribute ${key}`);
    return derTlv(0x31, derSequence(derOid(oid), attributeValue(oid, value)));
  });
  return derSequence(...rdns);
}

/** DER KeyUsage BIT STRING: named bits, trailing zero bits dropped (X.690 §11.2.2). */
export function keyUsageExtension(usages: readonly KeyUsageName[]): ExtensionInput {
  if (usages.length === 0) throw new TypeError('key usage list must not be empty');
  let bits = 0;
  for (const u of usages) bits |= 0x80 >> KEY_USAGE_BIT[u]; // all our bits fit in the first octet (bit 8 decipherOnly unused)
  let unused = 0;
  while (((bits >> unused) & 1) === 0) unused++;
  return { oid: OID.keyUsage, critical: true, value: derTlv(0x03, Uint8Array.of(unused, bits)) };
}

/** DER INTEGER for a non-negative safe integer. */
function derSmallInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`${n} is not a non-negative integer`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return derTlv(0x02, Uint8Array.from(bytes));
}

export function basicConstraintsExtension(ca: boolean, pathLength?: number): ExtensionInput {
  // cA DEFAULT FALSE is omitted when false (DER); pathLenConstraint only means something for a CA.
  const content = ca ? [Uint8Array.of(0x01, 0x01, 0xff), ...(pathLength === undefined ? [] : [derSmallInteger(pathLength)])] : [];
  return { oid: OID.basicConstraints, critical: true, value: derSequence(...content) };
}

export function extKeyUsageExtension(oids: readonly string[], critical = false): ExtensionInput {
  if (oids.length === 0) throw new TypeError('extended key usage list must not be empty');
  return { oid: OID.extKeyUsage, critical, value: derSequence(...oids.map(derOid)) };
}

export function subjectKeyIdExtension(keyId: Uint8Array): ExtensionInput {
  return { oid: OID.subjectKeyIdentifier, value: derOctetString(keyId) };
}

export function authorityKeyIdExtension(keyId: Uint8Array): ExtensionInput {
  return { oid: OID.authorityKeyIdentifier, value: derSequence(derTlv(0x80, keyId)) };
}

/** id-pe-masa-url: DER IA5String of the authority (or URI), digest §8.1. */
export function masaUrlExtension(masaUrl: string): ExtensionInput {
  if (!/^[\x21-\x7e]+$/.test(masaUrl)) throw new TypeError(`MASA URL "${masaUrl}" must be non-empty printable ASCII`);
  return { oid: OID.masaUrl, value: derTlv(0x16, ascii(masaUrl)) };
}

function ipBytes(ip: string): Uint8Array {
  const v = isIP(ip);
  if (v === 4) return Uint8Array.from(ip.split('.').map(Number));
  if (v !== 6) throw new TypeError(`"${ip}" is not an IP address`);
  const [head, tail = ''] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups: string[] = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  // embedded IPv4 forms (::ffff:1.2.3.4) are valid addresses but not worth a parser here
  if (groups.length !== 8 || !groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) throw new TypeError(`unsupported IPv6 address form "${ip}"`);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => { const n = parseInt(g, 16); out[2 * i] = n >> 8; out[2 * i + 1] = n & 0xff; });
  return out;
}

/** GeneralNames in DER: dNSName [2], iPAddress [7], uniformResourceIdentifier [6] (all IMPLICIT primitives). */
export function subjectAltNameExtension(san: SubjectAltName, critical = false): ExtensionInput {
  const names: Uint8Array[] = [];
  for (const d of san.dns ?? []) {
    if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(d)) throw new TypeError(`"${d}" is not a DNS name`);
    names.push(derTlv(0x82, ascii(d)));
  }
  for (const ip of san.ip ?? []) names.push(derTlv(0x87, ipBytes(ip)));
  for (const u of san.uri ?? []) {
    if (!IA5_RE.test(u)) throw new TypeError(`"${u}" is not an IA5String URI`);
    names.push(derTlv(0x86, ascii(u)));
  }
  if (names.length === 0) throw new TypeError('subjectAltName needs at least one name');
  return { oid: OID.subjectAltName, critical, value: derSequence(...names) };
}

/** Parses a SubjectAltName extension value back into DNS/IP/URI lists (other name forms are skipped). */
export function parseSubjectAltName(value: Uint8Array): SubjectAltName & { other: number } {
  const gn = pkijs.GeneralNames.fromBER(value);
  const out = { dns: [] as string[], ip: [] as string[], uri: [] as string[], other: 0 };
  for (const n of gn.names) {
    if (n.type === 2) out.dns.push(String(n.value));
    else if (n.type === 6) out.uri.push(String(n.value));
    else if (n.type === 7) {
      const b = new Uint8Array((n.value as asn1js.OctetString).valueBlock.valueHexView);
      out.ip.push(b.length === 4 ? Array.from(b).join('.') : Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':'));
    } else out.other++;
  }
  return out;
}

export function toPkijsExtension(e: ExtensionInput): pkijs.Extension {
  const v = e.value;
  return new pkijs.Extension({ extnID: e.oid, critical: e.critical ?? false, extnValue: v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer });
}
