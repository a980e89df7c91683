import { describe, expect, it } from 'vitest';
import { base64Alphabet, decodeBase64, encodeBase64, encodeBase64Url } from '../../src/voucher/base64.ts';

const b = (s: string): number[] | undefined => { const r = decodeBase64(s); return r && [...r]; };

describe('base64', () => {
  it('encodes standard padded and url unpadded', () => {
    const v = new Uint8Array([0xfb, 0xff, 0xbf, 0x01]);
    expect(encodeBase64(v)).toBe('+/+/AQ==');
    expect(encodeBase64Url(v)).toBe('-_-_AQ');
    expect(encodeBase64(new Uint8Array(new ArrayBuffer(8), 2, 3))).toBe('AAAA');
  });

  it('accepts both alphabets, padded or not', () => {
    expect(b('+/+/AQ==')).toEqual([0xfb, 0xff, 0xbf, 0x01]);
    expect(b('+/+/AQ')).toEqual([0xfb, 0xff, 0xbf, 0x01]);
    expect(b('-_-_AQ')).toEqual([0xfb, 0xff, 0xbf, 0x01]);
    expect(b('-_-_AQ==')).toEqual([0xfb, 0xff, 0xbf, 0x01]);
    expect(b('')).toEqual([]);
    expect(decodeBase64('-_XE9zK9q8Ll1qylMtLKeg')!.length).toBe(16);
    expect(base64Alphabet('-_XE9zK9q8Ll1qylMtLKeg')).toBe('url');
    expect(base64Alphabet('TauvK+Y/cc2RfIFvpZzfKQ==')).toBe('std');
    expect(base64Alphabet('AAAA')).toBe('std');
  });

  it('tolerates non-zero trailing bits (published placeholders)', () => {
    expect(decodeBase64('base64encodedvalue==')!.length).toBe(13);
  });

  it('rejects junk that Buffer would silently skip', () => {
    for (const s of ['AA AA', 'AA\nAA', 'AA*A', '+/-_', 'A', 'AAAAA', 'AA=', 'AA===', 'A===', 'AA==AA', '=AAA', 'AAA==', '...']) {
      expect(decodeBase64(s), s).toBeUndefined();
    }
  });

  it('restricts to one alphabet on request', () => {
    expect(decodeBase64('-_-_AQ', 'std')).toBeUndefined();
    expect(decodeBase64('+/+/AQ==', 'url')).toBeUndefined();
    expect(decodeBase64('AAAA', 'url')).toBeDefined();
  });
});
