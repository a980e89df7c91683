/**
 * A minimal BER/DER TLV reader for the CMS verification hot path.
 *
 * Why our own instead of asn1js/pkijs here: asn1js decodes every nested element (including each
 * embedded certificate) and pkijs then matches schemas, ~3 ms per voucher; the verifier only
 * needs a dozen fields and the raw bytes of the rest, which this reader returns as offsets in
 * ~20 µs. It accepts definite lengths and BER indefinite lengths (nesting bounded), and throws
 * MalformedError on anything it cannot read.
 */
import { MalformedError } from '../errors.ts';

export interface Tlv {
  /** Class bits (0 universal, 1 application, 2 context, 3 private). */
  cls: number;
  constructed: boolean;
  /** Tag number (low-tag form and multi-byte form). */
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the contents. */
  contentStart: number;
  /** Offset just after the contents (before the end-of-contents octets of an indefinite form). */
  contentEnd: number;
  /** Offset just after the whole element. */
  end: number;
}

const MAX_DEPTH = 32;

export const UNIVERSAL = { integer: 2, bitString: 3, octetString: 4, null: 5, oid: 6, sequence: 16, set: 17, utcTime: 23, generalizedTime: 24 } as const;

/** Reads the element at `offset` (must end by `limit`). */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length, depth = 0): Tlv {
  if (depth > MAX_DEPTH) throw new MalformedError('ASN.1: nesting too deep');
  let p = offset;
  if (p >= limit) throw new MalformedError('ASN.1: truncated (identifier)');
  const id = buf[p++]!;
  const cls = id >> 6;
  const constructed = (id & 0x20) !== 0;
  let tag = id & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (let i = 0; ; i++) {
      if (p >= limit || i > 3) throw new MalformedError('ASN.1: bad tag');
      const b = buf[p++]!;
      tag = (tag << 7) | (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
  }
  if (p >= limit) throw new MalformedError('ASN.1: truncated (length)');
  const first = buf[p++]!;
  if (first === 0x80) {
    // BER indefinite length: children until the end-of-contents octets 00 00.
    if (!constructed) throw new MalformedError('ASN.1: indefinite length on a primitive');
    const contentStart = p;
    for (;;) {
      if (p + 2 > limit) throw new MalformedError('ASN.1: missing end-of-contents');
      if (buf[p] === 0 && buf[p + 1] === 0) return { cls, constructed, tag, start: offset, contentStart, contentEnd: p, end: p + 2 };
      p = readTlv(buf, p, limit, depth + 1).end;
    }
  }
  let len = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0x7f || n > 4) throw new MalformedError('ASN.1: length too large');
    len = 0;
    for (let i = 0; i < n; i++) {
      if (p >= limit) throw new MalformedError('ASN.1: truncated (length)');
      len = len * 256 + buf[p++]!;
    }
  }
  const contentStart = p;
  const end = contentStart + len;
  if (end > limit) throw new MalformedError('ASN.1: truncated (contents)');
  return { cls, constructed, tag, start: offset, contentStart, contentEnd: end, end };
}

/** The children of a constructed element. */
export function children(buf: Uint8Array, t: Tlv, depth = 0): Tlv[] {
  if (!t.constructed) throw new MalformedError('ASN.1: constructed element expected');
  const out: Tlv[] = [];
  for (let p = t.contentStart; p < t.contentEnd;) {
    const c = readTlv(buf, p, t.contentEnd, depth + 1);
    out.push(c);
    p = c.end;
  }
  return out;
}

// Plain booleans, not type predicates: a predicate would narrow the false branch to `undefined`.
export function isUniversal(t: Tlv | undefined, tag: number): boolean {
  return t !== undefined && t.cls === 0 && t.tag === tag;
}

export function isContext(t: Tlv | undefined, tag: number): boolean {
  return t !== undefined && t.cls === 2 && t.tag === tag;
}

export function expectUniversal(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || !isUniversal(t, tag)) throw new MalformedError(`ASN.1: ${what} expected`);
  return t;
}

export function contents(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.contentStart, t.contentEnd);
}

export function raw(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.start, t.end);
}

/** Contents of an OCTET STRING, joining the segments of a BER constructed one. */
export function octetString(buf: Uint8Array, t: Tlv, depth = 0): Uint8Array {
  expectUniversal(t, UNIVERSAL.octetString, 'OCTET STRING');
  if (!t.constructed) return contents(buf, t);
  if (depth > MAX_DEPTH) throw new MalformedError('ASN.1: nesting too deep');
  return Buffer.concat(children(buf, t).map((c) => octetString(buf, c, depth + 1)));
}

/** Dotted form of an OBJECT IDENTIFIER. */
export function oid(buf: Uint8Array, t: Tlv): string {
  expectUniversal(t, UNIVERSAL.oid, 'OBJECT IDENTIFIER');
  const b = contents(buf, t);
  if (b.length === 0 || b.length > 64 || (b[b.length - 1]! & 0x80) !== 0) throw new MalformedError('ASN.1: bad OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new MalformedError('ASN.1: OBJECT IDENTIFIER arc too large');
    if ((byte & 0x80) === 0) { arcs.push(v); v = 0; }
  }
  const f = arcs[0]!;
  const head = f < 40 ? [0, f] : f < 80 ? [1, f - 40] : [2, f - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** Small non-negative INTEGER (versions). */
export function smallInteger(buf: Uint8Array, t: Tlv): number {
  expectUniversal(t, UNIVERSAL.integer, 'INTEGER');
  const b = contents(buf, t);
  if (b.length === 0 || b.length > 4 || (b[0]! & 0x80) !== 0) throw new MalformedError('ASN.1: unexpected INTEGER');
  return b.reduce((acc, x) => acc * 256 + x, 0);
}
