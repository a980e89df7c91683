/**
 * The one configured CBOR codec for COSE and YANG-CBOR (RFC 8949, RFC 9052, RFC 9254).
 *
 * Encoding and decoding are done by cbor-x, configured for plain interoperable CBOR: byte
 * strings are bstr (no tag 64), maps are plain maps (no tag 259), no record extension, maps
 * always decode to `Map` (COSE labels and SIDs are integers), decoded byte strings are plain
 * `Uint8Array` copies (never Buffers or views into the input).
 *
 * cbor-x alone is not a safe parser for hostile input, so every decode first runs a small
 * well-formedness scan written here (why our own: cbor-x has none of these checks):
 *  - it interprets many tags and simple values as its own extensions (records, packed CBOR,
 *    shared references that build cycles, typed arrays, generic objects) → only a whitelist
 *    of tags is allowed, and only false/true/null among the simple values;
 *  - it silently replaces invalid UTF-8 and keeps the last of duplicate map keys (RFC 9052 §9
 *    forbids duplicates; a second `nonce` must not win silently) → both rejected;
 *  - it has no nesting limit (deep input overflows the stack) → depth limit;
 *  - it encodes integers above 2^32 as float64 → the encoder converts them to BigInt first.
 * Declared lengths are checked against the remaining input, so no allocation is driven by a
 * claimed length.
 */
import { Encoder, Tag } from 'cbor-x';
import { MalformedError, SizeLimitError } from '../errors.ts';

export { Tag };

export interface CborDecodeOptions {
  /** Input size limit in bytes (default 64 KiB). */
  maxBytes?: number;
  /** Maximum nesting of arrays, maps and tags (default 16). */
  maxDepth?: number;
  /** Tags that may appear (default: COSE message tags 16, 17, 18, 96, 97, 98 and SID tag 47). */
  allowedTags?: readonly number[];
}

export const CBOR_DEFAULT_MAX_BYTES = 64 * 1024;
export const CBOR_DEFAULT_MAX_DEPTH = 16;
export const CBOR_DEFAULT_TAGS: readonly number[] = [16, 17, 18, 47, 96, 97, 98];

const codec = new Encoder({
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  useTag259ForMaps: false,
  variableMapSize: true,
  structuredClone: false,
  pack: false,
} as ConstructorParameters<typeof Encoder>[0] & { useTag259ForMaps: boolean });

/** Encodes a value (Map, plain object, array, Uint8Array, string, number, bigint, boolean, null, Tag). */
export function cborEncode(value: unknown): Uint8Array {
  const out = codec.encode(prepare(value, 0));
  // Copy: the returned Buffer may be a view into cbor-x's reusable output buffer.
  return new Uint8Array(out);
}

/** Decodes exactly one well-formed CBOR item; throws MalformedError / SizeLimitError. */
export function cborDecode(bytes: Uint8Array, opts: CborDecodeOptions = {}): unknown {
  if (!(bytes instanceof Uint8Array)) throw new MalformedError('CBOR input must be bytes');
  const maxBytes = opts.maxBytes ?? CBOR_DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) throw new SizeLimitError(maxBytes, bytes.length);
  if (bytes.length === 0) throw new MalformedError('empty CBOR input');
  new Scanner(bytes, opts.maxDepth ?? CBOR_DEFAULT_MAX_DEPTH, new Set(opts.allowedTags ?? CBOR_DEFAULT_TAGS)).run();
  let value: unknown;
  try {
    // A fresh view: cbor-x attaches a `dataView` property to the object it decodes from.
    value = codec.decode(bytes.subarray());
  } catch (e) {
    throw new MalformedError(`invalid CBOR: ${(e as Error).message}`, { cause: e });
  }
  return normalize(value);
}

/** Encoder-side normalisation: large integers as BigInt, no undefined/functions/Dates. */
function prepare(v: unknown, depth: number): unknown {
  if (depth > 64) throw new TypeError('cborEncode: value nested too deeply');
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    return Number.isInteger(v) && Math.abs(v) > 0xffffffff ? BigInt(v) : v;
  }
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x) => prepare(x, depth + 1));
  if (v instanceof Tag) return new Tag(prepare(v.value, depth + 1), v.tag);
  if (v instanceof Map) {
    const m = new Map<unknown, unknown>();
    for (const [k, x] of v) m.set(prepare(k, depth + 1), prepare(x, depth + 1));
    return m;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const m = new Map<unknown, unknown>();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) m.set(k, prepare(x, depth + 1));
    return m;
  }
  throw new TypeError(`cborEncode: cannot encode ${v === undefined ? 'undefined' : Object.prototype.toString.call(v)}`);
}

/** Decoder-side normalisation: plain Uint8Array copies (not Buffer), safe bigints as numbers. */
function normalize(v: unknown): unknown {
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v instanceof Tag) return new Tag(normalize(v.value), v.tag);
  if (v instanceof Map) {
    const m = new Map<unknown, unknown>();
    for (const [k, x] of v) m.set(normalize(k), normalize(x));
    return m;
  }
  return v;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Well-formedness scan (RFC 8949 §5.3.1) plus the restrictions listed in the file comment. */
class Scanner {
  private pos = 0;
  constructor(private readonly b: Uint8Array, private readonly maxDepth: number,
    private readonly tags: ReadonlySet<number>) {}

  run(): void {
    this.item(1, false);
    if (this.pos !== this.b.length) throw new MalformedError(`trailing bytes after CBOR item at offset ${this.pos}`);
  }

  private fail(msg: string, at = this.pos): never {
    throw new MalformedError(`malformed CBOR at offset ${at}: ${msg}`);
  }

  private byte(): number {
    if (this.pos >= this.b.length) this.fail('unexpected end of input');
    return this.b[this.pos++]!;
  }

  /** Argument of a head; -1 for indefinite length. */
  private arg(ai: number): number | bigint {
    if (ai < 24) return ai;
    if (ai === 31) return -1;
    if (ai > 27) this.fail(`reserved additional information ${ai}`);
    const n = 1 << (ai - 24);
    if (this.pos + n > this.b.length) this.fail('unexpected end of input');
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.b[this.pos++]!);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  /** Rejects a declared count that cannot fit in the remaining input. */
  private count(a: number | bigint, bytesPerItem: number): number {
    if (typeof a === 'bigint' || a * bytesPerItem > this.b.length - this.pos) this.fail(`declared length ${a} exceeds the input`);
    return a;
  }

  /** Scans one item. When `asKey`, returns an identity string used to detect duplicate map keys. */
  private item(depth: number, asKey: boolean): string {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    const start = this.pos;
    const ib = this.byte();
    const major = ib >> 5;
    const ai = ib & 0x1f;
    const a = this.arg(ai);
    if (a === -1 && (major < 2 || major === 6)) this.fail('indefinite length not allowed for this type', start);
    switch (major) {
      case 0: return `u${a}`;
      case 1: return `n${a}`;
      case 2:
      case 3: {
        if (a === -1) this.fail('indefinite-length strings are not supported', start);
        const len = this.count(a, 1);
        const s = this.b.subarray(this.pos, this.pos + len);
        this.pos += len;
        if (major === 2) return asKey ? `b${Buffer.from(s).toString('hex')}` : '';
        try {
          return `t${utf8.decode(s)}`;
        } catch {
          return this.fail('text string is not valid UTF-8', start);
        }
      }
      case 4: {
        if (a === -1) {
          while (!this.atBreak()) this.item(depth + 1, false);
        } else {
          const n = this.count(a, 1);
          for (let i = 0; i < n; i++) this.item(depth + 1, false);
        }
        return asKey ? this.raw(start) : '';
      }
      case 5: {
        const seen = new Set<string>();
        const entry = (): void => {
          const keyAt = this.pos;
          const k = this.item(depth + 1, true);
          if (seen.has(k)) this.fail('duplicate map key', keyAt);
          seen.add(k);
          this.item(depth + 1, false);
        };
        if (a === -1) {
          while (!this.atBreak()) entry();
        } else {
          const n = this.count(a, 2);
          for (let i = 0; i < n; i++) entry();
        }
        return asKey ? this.raw(start) : '';
      }
      case 6: {
        if (typeof a === 'bigint' || !this.tags.has(a)) this.fail(`tag ${a} is not allowed`, start);
        return `g${a}(${this.item(depth + 1, asKey)})`;
      }
      default: {
        // major 7: only false, true, null and floats.
        if (ai === 20 || ai === 21 || ai === 22) return `s${ai}`;
        if (ai >= 25 && ai <= 27) return asKey ? this.raw(start) : '';
        if (ai === 31) this.fail('unexpected break', start);
        return this.fail(ai === 23 ? 'undefined is not allowed' : 'simple values other than false/true/null are not allowed', start);
      }
    }
  }

  private atBreak(): boolean {
    if (this.pos >= this.b.length) this.fail('unterminated indefinite-length item');
    if (this.b[this.pos] === 0xff) { this.pos++; return true; }
    return false;
  }

  private raw(start: number): string {
    return `r${Buffer.from(this.b.subarray(start, this.pos)).toString('hex')}`;
  }
}
