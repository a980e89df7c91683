import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildHashChain, canonicalJson, chainHash, GENESIS_HASH, verifyHashChain } from '../../src/store/hashchain.ts';

describe('canonicalJson (RFC 8785 subset)', () => {
  it('sorts keys, drops undefined members, no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined, d: { z: 1, y: 2 } }))
      .toBe('{"a":[true,null,"x"],"b":1,"d":{"y":2,"z":1}}');
  });
  it('sorts by UTF-16 code units like JCS', () => {
    expect(canonicalJson({ '\u20ac': 1, '\r': 2, 'ö': 3, '1': 4 })).toBe('{"\\r":2,"1":4,"ö":3,"€":1}');
  });
  it('uses ECMAScript number serialisation', () => {
    expect(canonicalJson([1e21, 0.1, -0, 1.5e-7])).toBe('[1e+21,0.1,0,1.5e-7]');
  });
  it('refuses values with no single JSON form', () => {
    expect(() => canonicalJson({ a: NaN })).toThrow(/\$\.a: non-finite/);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/plain objects/);
    expect(() => canonicalJson({ n: 1n })).toThrow(/bigint/);
    expect(() => canonicalJson([Buffer.from('x')])).toThrow(/plain objects/);
  });
});

describe('hash chain', () => {
  const entries = [{ serial: 'A', event: 'voucher' }, { serial: 'B', event: 'voucher' }, { serial: 'A', event: 'revoke' }];

  it('hash = SHA-256(prev bytes || canonical JSON)', () => {
    const expected = createHash('sha256').update(Buffer.alloc(32)).update('{"event":"voucher","serial":"A"}').digest('hex');
    expect(chainHash(GENESIS_HASH, entries[0])).toBe(expected);
  });

  it('verifies an intact chain and returns its head', () => {
    const chain = buildHashChain(entries);
    expect(verifyHashChain(chain)).toEqual({ ok: true, head: chain[2]!.hash });
  });

  it('detects an altered entry at its index', () => {
    const chain = buildHashChain(entries);
    chain[1] = { ...chain[1]!, entry: { serial: 'C', event: 'voucher' } };
    expect(verifyHashChain(chain)).toMatchObject({ ok: false, index: 1 });
  });

  it('detects a dropped or reordered entry', () => {
    const chain = buildHashChain(entries);
    expect(verifyHashChain([chain[0]!, chain[2]!])).toMatchObject({ ok: false, index: 1 });
    expect(verifyHashChain([chain[1]!, chain[0]!, chain[2]!])).toMatchObject({ ok: false, index: 0 });
  });

  it('verifies a segment from a given start hash', () => {
    const chain = buildHashChain(entries);
    expect(verifyHashChain(chain.slice(1), chain[0]!.hash).ok).toBe(true);
    expect(verifyHashChain(chain.slice(1)).ok).toBe(false);
  });

  it('refuses a malformed predecessor hash', () => {
    expect(() => chainHash('XYZ', {})).toThrow(/64 lower-case hex/);
  });
});
