import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MalformedError, SizeLimitError } from '../../src/errors.ts';
import { Tag, cborDecode, cborEncode } from '../../src/voucher/cbor-codec.ts';
import { readVector } from '../helpers/vectors.ts';
import { hex } from './fixtures.ts';

const h = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('cborEncode', () => {
  it('writes plain bstr, plain maps with integer keys, no tag 64/259, no records', () => {
    expect(h(cborEncode(new Uint8Array([1, 2])))).toBe('420102');
    expect(h(cborEncode(new Map<unknown, unknown>([[2501, new Map([[7, new Uint8Array([9])]])]])))).toBe('a11909c5a1074109');
    expect(h(cborEncode({ version: 1, status: true }))).toBe('a26776657273696f6e0166737461747573f5');
    expect(h(cborEncode(new Tag(2512, 47)))).toBe('d82f1909d0');
    expect(h(cborEncode(Buffer.from([0xaa])))).toBe('41aa');
  });

  it('encodes integers beyond 32 bits as integers, not floats', () => {
    expect(h(cborEncode(305823299950))).toBe('1b00000047347d396e');
    expect(h(cborEncode(-(2 ** 33)))).toBe('3b00000001ffffffff');
    expect(cborDecode(cborEncode([305823299950, -(2 ** 33)]))).toEqual([305823299950, -(2 ** 33)]);
  });

  it('refuses undefined and exotic objects instead of writing CBOR extensions', () => {
    expect(() => cborEncode({ a: undefined })).toThrow(TypeError);
    expect(() => cborEncode(new Date())).toThrow(TypeError);
    expect(() => cborEncode(new Set([1]))).toThrow(TypeError);
  });
});

describe('cborDecode', () => {
  it('returns Maps for maps and plain Uint8Array (not Buffer) for bstr', () => {
    const v = cborDecode(hex('a11909c5a1074109')) as Map<number, Map<number, Uint8Array>>;
    const b = v.get(2501)!.get(7)!;
    expect(b.constructor).toBe(Uint8Array);
    expect([...b]).toEqual([9]);
  });

  it('leaves the input object untouched (cbor-x would attach a dataView to it)', () => {
    const input = hex('a10102');
    cborDecode(input);
    expect(Object.keys(input)).toEqual(['0', '1', '2']);
    expect(input).toEqual(hex('a10102'));
  });

  it('decodes the cBRSKI COSE vectors (tag 18, protected h\'A10126\')', () => {
    for (const f of ['pvr', 'rvr', 'voucher']) {
      const t = cborDecode(readVector(`cbrski/${f}.cose`)) as Tag;
      expect(t).toBeInstanceOf(Tag);
      expect(t.tag).toBe(18);
      expect(h((t.value as Uint8Array[])[0]!)).toBe('a10126');
    }
  });

  const bad: Array<[string, string, RegExp]> = [
    ['duplicate integer keys', 'a2 01 02 01 03', /duplicate map key/],
    ['duplicate keys, non-minimal encoding', 'a2 01 02 18 01 03', /duplicate map key/],
    ['duplicate text keys', 'a2 616101 616102', /duplicate map key/],
    ['duplicate tag-47 keys', 'a2 d82f01 01 d82f01 02', /duplicate map key/],
    ['invalid UTF-8', '62 c328', /UTF-8/],
    ['tag 28/29 shared references (cycles)', 'd81c81d81d00', /tag 28/],
    ['tag 1 epoch date', 'c1 01', /tag 1 /],
    ['tag 64 typed array', 'd840 41 00', /tag 64/],
    ['tag 259 map', 'd90103 a0', /tag 259/],
    ['packed CBOR tag 51', 'd833 80', /tag 51/],
    ['simple value (packed reference in cbor-x)', 'f0', /simple values/],
    ['undefined', 'f7', /undefined/],
    ['declared length beyond the input', '5a ffffffff 00', /exceeds the input/],
    ['array length beyond the input', '9a 7fffffff', /exceeds the input/],
    ['map length beyond the input', 'ba 7fffffff 00', /exceeds the input/],
    ['truncated', '43 0102', /exceeds the input/],
    ['trailing bytes', '01 02', /trailing/],
    ['reserved additional info', '1c', /reserved/],
    ['lone break', 'ff', /break/],
    ['indefinite-length string', '5f 41 01 ff', /indefinite-length strings/],
    ['unterminated indefinite array', '9f 01', /unterminated/],
    ['indefinite integer', '1f', /indefinite length not allowed/],
  ];
  for (const [what, input, msg] of bad) {
    it(`rejects ${what}`, () => {
      let err: unknown;
      try { cborDecode(hex(input)); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(MalformedError);
      expect((err as Error).message).toMatch(msg);
    });
  }

  it('accepts indefinite-length arrays and maps', () => {
    expect(cborDecode(hex('9f 01 02 ff'))).toEqual([1, 2]);
    expect(cborDecode(hex('bf 01 02 ff'))).toEqual(new Map([[1, 2]]));
  });

  it('limits nesting depth (deep input never reaches cbor-x)', () => {
    const deep = (n: number): Uint8Array => new Uint8Array([...new Array(n).fill(0x81), 0x00]);
    expect(() => cborDecode(deep(15))).not.toThrow();
    expect(() => cborDecode(deep(16))).toThrow(/nesting deeper than 16/);
    expect(() => cborDecode(deep(100_000), { maxBytes: 200_000 })).toThrow(MalformedError);
    expect(() => cborDecode(deep(4), { maxDepth: 3 })).toThrow(MalformedError);
  });

  it('limits input size', () => {
    expect(() => cborDecode(new Uint8Array(64 * 1024 + 1))).toThrow(SizeLimitError);
    expect(() => cborDecode(new Uint8Array(11), { maxBytes: 10 })).toThrow(SizeLimitError);
    expect(() => cborDecode(new Uint8Array(0))).toThrow(MalformedError);
  });

  it('honours a caller tag whitelist', () => {
    expect(() => cborDecode(hex('d2 80'), { allowedTags: [47] })).toThrow(/tag 18/);
    expect(cborDecode(hex('d82f 01'), { allowedTags: [47] })).toEqual(new Tag(1, 47));
  });

  it('round-trips arbitrary JSON-like values and never throws anything but BrskiErrors on junk', () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 8 }).map((u) => new Uint8Array(u)),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.uniqueArray(fc.tuple(fc.integer({ min: -5, max: 5000 }), tie('v')), { maxLength: 3, selector: (t) => t[0] }).map((e) => new Map(e))),
    })).v;
    fc.assert(fc.property(value, (v) => { expect(cborDecode(cborEncode(v))).toEqual(v); }), { numRuns: 200 });
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (b) => {
      try { cborDecode(b); } catch (e) { expect(e).toBeInstanceOf(MalformedError); }
    }), { numRuns: 500 });
  });
});
