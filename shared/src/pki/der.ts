/**
 * Small DER helpers on top of asn1js: strict whole-input parsing (no trailing bytes, resource
 * limits for untrusted input) and TLV assembly. Certificates, CSRs and CRLs are assembled from the
 * exact TBS bytes the Signer signed, so nothing is re-encoded between signing and output.
 */
import * as asn1js from 'asn1js';
import { MalformedError } from '../errors.ts';

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
