/**
 * Small DER helpers on top of asn1js: strict whole-input parsing (no trailing bytes, resource
 * limits for untrusted input) and TLV assembly. Certificates, CSRs and CRLs are assembled from the
 * exact TBS bytes the Signer signed, so nothing is re-encoded between signing and output.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import {
  children as tlvChildren, contents, expectUniversal, isUniversal, oid as oidOf, UNIVERSAL, type Tlv,
} from '../envelope/der.ts';
import { MalformedError } from '../errors.ts';
import { NAME_ATTRIBUTE_BY_OID } from './oids.ts';

const PARSE_LIMITS = { maxDepth: 32, maxNodes: 20_000 } as const;

/** Parses one complete BER/DER element; anything left over or any decoding error is MalformedError. */
export function parseDer(bytes: Uint8Array, what: string): asn1js.AsnType {
  if (bytes.length === 0) throw new MalformedError(`${what}: empty input`);
  let parsed: asn1js.FromBerResult;
  try {
    parsed = asn1js.fromBER(bytes, PARSE_LIMITS);
  } catch (e) {
    throw new MalformedError(`${what}: not valid ASN.1`, { cause: e });
  }
  if (parsed.offset === -1 || parsed.result.error) throw new MalformedError(`${what}: not valid ASN.1 (${parsed.result.error || 'decode error'})`);
  if (parsed.offset !== bytes.length) throw new MalformedError(`${what}: ${bytes.length - parsed.offset} trailing bytes after the DER element`);
  return parsed.result;
}

/** Child elements of a constructed block (SEQUENCE, SET, constructed context tag). */
export function children(block: asn1js.AsnType, what: string): asn1js.AsnType[] {
  const value = (block as { valueBlock?: { value?: unknown } }).valueBlock?.value;
  if (!block.idBlock.isConstructed || !Array.isArray(value)) throw new MalformedError(`${what}: constructed element expected`);
  return value as asn1js.AsnType[];
}

/** The exact encoded bytes of a parsed element (as it appeared in the input). */
export function rawBytes(block: asn1js.AsnType): Uint8Array {
  return new Uint8Array(block.valueBeforeDecodeView);
}

export function tagOf(block: asn1js.AsnType): { cls: number; number: number; constructed: boolean } {
  const id = block.idBlock;
  return { cls: id.tagClass, number: id.tagNumber, constructed: id.isConstructed };
}

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One DER TLV with a single-byte tag. */
export function derTlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const len = content.reduce((n, c) => n + c.length, 0);
  const head = derLength(len);
  const out = new Uint8Array(1 + head.length + len);
  out[0] = tag;
  out.set(head, 1);
  let p = 1 + head.length;
  for (const c of content) { out.set(c, p); p += c.length; }
  return out;
}

export const derSequence = (...content: Uint8Array[]): Uint8Array => derTlv(0x30, ...content);
export const derOctetString = (content: Uint8Array): Uint8Array => derTlv(0x04, content);

/** BIT STRING with zero unused bits (signatures). */
export const derBitString = (content: Uint8Array): Uint8Array => derTlv(0x03, Uint8Array.of(0), content);

/**
 * Splits a DER TLV header: returns tag, content offset and content length. Used where a value
 * must be compared byte-wise in two framings (idevid-issuer with and without the OCTET STRING).
 */
export function readTlv(bytes: Uint8Array, offset = 0): { tag: number; start: number; length: number } | undefined {
  if (offset + 2 > bytes.length) return undefined;
  const tag = bytes[offset]!;
  let p = offset + 1;
  let len = bytes[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > bytes.length) return undefined;
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + bytes[p++]!;
  }
  if (p + len > bytes.length) return undefined;
  return { tag, start: p, length: len };
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

/** Canonical hex of a certificate/CRL serial: upper case, no leading zeros, so any two spellings compare equal. */
export function normalizeSerialHex(hex: string): string {
  const h = hex.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]+$/.test(h)) throw new TypeError(`serial number ${hex} is not hex`);
  const stripped = h.replace(/^0+/, '');
  return stripped === '' ? '00' : stripped;
}

/** ArrayBuffer copy of a view (pkijs/asn1js constructors take ArrayBuffer). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

// ---------------------------------------------------------------------------------------------
// Readers on the TLV reader of envelope/der.ts (hot paths: CSRs, certs-only). That module is the
// shared one; what it lacks for PKI (directory strings, names, a DER-strictness check) lives here
// rather than in a copy of it.

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/**
 * A DirectoryString / name attribute value as text. Same decoding as asn1js (which parseName in
 * identity.ts uses) for valid input; invalid UTF-8, odd BMPString lengths and code points outside
 * Unicode are MalformedError instead of asn1js's best-effort fallback.
 */
export function directoryString(buf: Uint8Array, t: Tlv, what: string): string {
  if (t.cls !== 0 || t.constructed) throw new MalformedError(`${what}: string value expected`);
  const b = contents(buf, t);
  switch (t.tag) {
    case 12: // UTF8String
      try { return utf8Strict.decode(b); } catch (e) { throw new MalformedError(`${what}: invalid UTF-8`, { cause: e }); }
    case 30: { // BMPString: UTF-16BE
      if (b.length % 2 !== 0) throw new MalformedError(`${what}: BMPString of odd length`);
      let s = '';
      for (let i = 0; i < b.length; i += 2) s += String.fromCharCode((b[i]! << 8) | b[i + 1]!);
      return s;
    }
    case 28: { // UniversalString: UCS-4 BE
      if (b.length % 4 !== 0) throw new MalformedError(`${what}: UniversalString length not a multiple of 4`);
      const cps: number[] = [];
      for (let i = 0; i < b.length; i += 4) {
        const cp = ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new MalformedError(`${what}: UniversalString code point out of range`);
        cps.push(cp);
      }
      return String.fromCodePoint(...cps);
    }
    // Numeric, Printable, Teletex, Videotex, IA5, Graphic, Visible, General: one byte per character.
    case 18: case 19: case 20: case 21: case 22: case 25: case 26: case 27:
      return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
    default:
      throw new MalformedError(`${what}: string attribute value expected`);
  }
}

/** Name ::= SEQUENCE OF SET OF AttributeTypeAndValue → [[shortName|oid, value], ...] (as identity.ts parseName). */
export function readName(buf: Uint8Array, t: Tlv): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rdn of tlvChildren(buf, expectUniversal(t, UNIVERSAL.sequence, 'Name'))) {
    if (!isUniversal(rdn, UNIVERSAL.set) || !rdn.constructed) throw new MalformedError('Name: RDN SET expected');
    for (const atv of tlvChildren(buf, rdn)) {
      if (!isUniversal(atv, UNIVERSAL.sequence) || !atv.constructed) throw new MalformedError('Name: malformed attribute');
      const parts = tlvChildren(buf, atv);
      const [type, value] = parts;
      if (parts.length !== 2 || !isUniversal(type, UNIVERSAL.oid) || !value) throw new MalformedError('Name: malformed attribute');
      const oid = oidOf(buf, type!);
      out.push([NAME_ATTRIBUTE_BY_OID[oid] ?? oid, directoryString(buf, value, 'Name')]);
    }
  }
  return out;
}

/** Walks every element under `t`, so malformed BER anywhere below is refused (depth bounded by the reader). */
export function assertWellFormed(buf: Uint8Array, t: Tlv, depth = 0): void {
  if (!t.constructed) return;
  for (const c of tlvChildren(buf, t, depth)) assertWellFormed(buf, c, depth + 1);
}

/**
 * True when `t` and everything below it use DER framing: definite, minimal lengths and no
 * constructed strings. Bytes that pass can be copied into certificates as they are.
 */
export function isStrictDer(buf: Uint8Array, t: Tlv, depth = 0): boolean {
  if (t.end !== t.contentEnd) return false; // indefinite length
  let p = t.start + 1;
  if ((buf[t.start]! & 0x1f) === 0x1f) while (buf[p++]! & 0x80);
  const len = t.contentEnd - t.contentStart;
  const first = buf[p]!;
  if (first & 0x80) {
    const n = first & 0x7f;
    let need = 0;
    for (let v = len; v > 0; v = Math.floor(v / 256)) need++;
    if (len < 0x80 || n !== need) return false;
  }
  if (!t.constructed) return true;
  if (t.cls === 0 && (t.tag === UNIVERSAL.bitString || t.tag === UNIVERSAL.octetString)) return false;
  return tlvChildren(buf, t, depth).every((c) => isStrictDer(buf, c, depth + 1));
}

// ---------------------------------------------------------------------------------------------
// SubjectPublicKeyInfo bytes of a KeyObject, without exporting it again

const knownSpki = new WeakMap<KeyObject, Uint8Array>();

/**
 * Records the canonical DER SubjectPublicKeyInfo of `key` (exactly what `key.export({type:'spki',
 * format:'der'})` returns) where it is already at hand — a parsed CSR, a key generated in the SE —
 * because each OpenSSL 3 export costs ~0.1 ms. Callers must pass those exact bytes: issuance
 * copies them into certificates.
 */
export function rememberSpki(key: KeyObject, spki: Uint8Array): void {
  if (key.type === 'public') knownSpki.set(key, spki);
}

/** Named curves whose SPKI is assembled from the JWK coordinates: OpenSSL name → curve OID. */
const EC_SPKI_CURVES: Record<string, string> = {
  prime256v1: '1.2.840.10045.3.1.7', secp384r1: '1.3.132.0.34', secp521r1: '1.3.132.0.35',
};
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/**
 * DER SubjectPublicKeyInfo of a key (a private key's public half): the recorded bytes, else
 * computed once and recorded. For named-curve EC keys the canonical form (named curve,
 * uncompressed point) is assembled from the JWK coordinates: OpenSSL 3's SPKI encoder costs
 * ~115 µs per call, the JWK export ~5 µs. Other keys are exported.
 */
export function spkiOfKey(key: KeyObject): Uint8Array {
  let spki = knownSpki.get(key);
  if (!spki) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    const curveOid = pub.asymmetricKeyType === 'ec' ? EC_SPKI_CURVES[pub.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
    if (curveOid) {
      const jwk = pub.export({ format: 'jwk' });
      const point = Buffer.concat([Buffer.of(0, 4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      spki = derSequence(derSequence(derOid(EC_PUBLIC_KEY), derOid(curveOid)), derTlv(0x03, point));
    } else {
      spki = new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
    }
    if (key.type === 'public') knownSpki.set(key, spki);
  }
  return spki;
}

// ---------------------------------------------------------------------------------------------
// OBJECT IDENTIFIER encoding (hand-written: asn1js builds an object tree per OID, ~10 µs each)

const oidDerCache = new Map<string, Uint8Array>();
const OID_RE = /^[0-2](\.(0|[1-9]\d*))+$/;

/** DER OBJECT IDENTIFIER for a dotted string (cached: the stack uses a few dozen OIDs). */
export function derOid(dotted: string): Uint8Array {
  let d = oidDerCache.get(dotted);
  if (d) return d;
  if (!OID_RE.test(dotted)) throw new TypeError(`"${dotted}" is not a dotted OID`);
  const arcs = dotted.split('.').map(Number);
  if (arcs.some((a) => !Number.isSafeInteger(a)) || (arcs[0]! < 2 && arcs[1]! > 39)) throw new TypeError(`"${dotted}" is not a valid OID`);
  const body: number[] = [];
  const push = (v: number): void => {
    const bytes = [v % 128];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift(0x80 | (v % 128));
    body.push(...bytes);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  d = derTlv(0x06, Uint8Array.from(body));
  if (oidDerCache.size < 1024) oidDerCache.set(dotted, d);
  return d;
}
