/**
 * SHA-256 hash chains for append-only audit logs: entry hash = SHA-256(prevHash || canonicalJson(entry)),
 * the first entry chained to 32 zero bytes. Altering, dropping or reordering an entry breaks every
 * later hash, so an exported log (or its last hash, published elsewhere) shows tampering.
 *
 * canonicalJson follows RFC 8785 (JCS) for the values audit entries use: keys sorted by UTF-16
 * code units, no whitespace, ECMAScript number and string serialisation. Written here because it
 * is ~30 lines and no JCS package is installed.
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue | undefined };

export function canonicalJson(value: unknown): string {
  return serialize(value, '$');
}

function serialize(v: unknown, at: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return v ? 'true' : 'false';
    case 'string': return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`${at}: non-finite number cannot be canonicalised`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x, i) => serialize(x, `${at}[${i}]`)).join(',')}]`;
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        // Dates, Buffers, Maps… have no single JSON form; the caller must choose one explicitly.
        throw new TypeError(`${at}: only plain objects can be canonicalised`);
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${serialize(obj[k], `${at}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`${at}: ${typeof v} cannot be canonicalised`);
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Hash of `entry` chained after `prevHash` (lower-case hex; GENESIS_HASH for the first entry). */
export function chainHash(prevHash: string, entry: unknown): string {
  if (!HEX64.test(prevHash)) throw new TypeError('prevHash must be 64 lower-case hex digits');
  return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonicalJson(entry), 'utf8').digest('hex');
}

export interface ChainedEntry<T = unknown> { entry: T; hash: string }

export type ChainVerdict = { ok: true; head: string } | { ok: false; index: number; reason: string };

/** Recomputes the chain from `start`; reports the first entry whose hash does not match. */
export function verifyHashChain(entries: readonly ChainedEntry[], start: string = GENESIS_HASH): ChainVerdict {
  let prev = start;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    let expected: string;
    try {
      expected = chainHash(prev, e.entry);
    } catch (err) {
      return { ok: false, index: i, reason: (err as Error).message };
    }
    if (e.hash !== expected) return { ok: false, index: i, reason: 'hash does not match content and predecessor' };
    prev = expected;
  }
  return { ok: true, head: prev };
}

/** Builds a chain from plain entries (tests, exports). */
export function buildHashChain<T>(entries: readonly T[], start: string = GENESIS_HASH): ChainedEntry<T>[] {
  let prev = start;
  return entries.map((entry) => {
    prev = chainHash(prev, entry);
    return { entry, hash: prev };
  });
}
