/**
 * Hostile inputs, derived from valid messages with a seeded PRNG (the seed is printed; rerun
 * one with BRSKI_FUZZ_SEED): truncations, bit flips, random splices, garbage, non-UTF-8,
 * deep and huge JSON / CBOR, oversized bodies. A hand-written mutation loop rather than
 * fast-check properties because the interesting part is throughput against live servers
 * (10,000+ requests with keep-alive and bounded concurrency), not shrinking.
 */

/** mulberry32: tiny, fast, good enough to pick mutations reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rng = () => number;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);

/** Mutators may land on a no-op (empty splice); a fuzz case must differ from its base. */
export function ensureChanged(rng: Rng, base: Uint8Array, m: Uint8Array): Uint8Array {
  if (m.length !== base.length || !Buffer.from(m).equals(Buffer.from(base))) return m;
  const out = Uint8Array.from(base);
  if (out.length === 0) return Uint8Array.of(0xff);
  out[Math.floor(rng() * out.length)]! ^= 0x80;
  return out;
}

export function truncate(rng: Rng, b: Uint8Array): Uint8Array {
  return b.subarray(0, int(rng, Math.max(1, b.length))); // a strict prefix, possibly empty
}

export function bitflip(rng: Rng, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  const flips = 1 + int(rng, 8);
  for (let i = 0; i < flips && out.length > 0; i++) out[int(rng, out.length)]! ^= 1 << int(rng, 8);
  return out;
}

export function randomBytes(rng: Rng, max: number): Uint8Array {
  const out = new Uint8Array(int(rng, max + 1));
  for (let i = 0; i < out.length; i++) out[i] = int(rng, 256);
  return out;
}

/** Random bytes spliced into a valid message (overwrite, insert or duplicate a region). */
export function splice(rng: Rng, b: Uint8Array): Uint8Array {
  const at = int(rng, b.length + 1);
  const junk = randomBytes(rng, 64);
  switch (int(rng, 3)) {
    case 0: return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at + junk.length)]);
    case 1: return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
    default: return Uint8Array.from([...b.subarray(0, at), ...b.subarray(int(rng, b.length + 1)), ...b.subarray(at)]);
  }
}

/** Invalid UTF-8 (overlong, lone continuation, surrogate, 0xFF) spliced into text. */
export function nonUtf8(rng: Rng, b: Uint8Array): Uint8Array {
  const bad = [[0xc0, 0xaf], [0x80], [0xed, 0xa0, 0x80], [0xff, 0xfe], [0xc3, 0x28], [0xf8, 0x88, 0x80, 0x80, 0x80]][int(rng, 6)]!;
  const at = int(rng, b.length + 1);
  return Uint8Array.from([...b.subarray(0, at), ...bad, ...b.subarray(at)]);
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Bodies whose shape alone is the attack; each stays under or just over a 64 KiB limit. */
export const SHAPES: Record<string, Uint8Array> = {
  deepJsonArray: enc(`${'['.repeat(30_000)}${']'.repeat(30_000)}`),
  deepJsonObject: enc(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`),
  wideJson: enc(JSON.stringify(Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i])))),
  longJsonString: enc(JSON.stringify({ version: 1, status: false, reason: 'x'.repeat(60_000) })),
  jsonBigNumber: enc(`{"version":1e999999,"status":true}`),
  jsonDuplicateKeys: enc(`{"version":1,"version":2,"status":true,"status":false}`),
  jsonProto: enc(`{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"version":1,"status":true}`),
  deepCborArray: Uint8Array.from([...new Array(60_000).fill(0x81), 0x00]),
  deepCborTags: Uint8Array.from([...Array.from({ length: 20_000 }, () => [0xd8, 0x2f]).flat(), 0x00]),
  cborHugeMapHeader: Uint8Array.from([0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
  cborHugeBytesHeader: Uint8Array.from([0x5b, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02]),
  cborIndefiniteUnclosed: Uint8Array.from([0x9f, 0x9f, 0x9f, 0x01, 0x02]),
  cborTag18Garbage: Uint8Array.from([0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40]),
  nulBytes: new Uint8Array(4096),
  utf16Bom: Uint8Array.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]),
  base64Junk: enc('MIIB!!!!@@@@====\u0000\u0001 not base64 at all'),
};

/** Over every configured body limit (64 KiB): must be refused with 413, unread. */
export const OVERSIZED: Uint8Array[] = [new Uint8Array(70 * 1024).fill(0x41), new Uint8Array(2 * 1024 * 1024).fill(0x30)];

export const WRONG_TYPES = [
  'text/plain', 'application/json', 'application/cbor', 'application/octet-stream', 'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded', 'application/voucher-cms+json', 'application/voucher-jws+json', 'application/voucher-cose+cbor',
  'application/pkcs10', 'application/voucher-jws+json; charset=\u00ff\u00fe', 'application/', '*/*', ';;;', 'a'.repeat(2000),
];
