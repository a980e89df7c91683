/** parseJsonStrict's pre-scan: strings skipped by their closing quote, duplicates by decoded name. */
import { describe, expect, it } from 'vitest';
import { MalformedError } from '../../src/errors.ts';
import { decodeBase64 } from '../../src/voucher/base64.ts';
import { parseJsonStrict } from '../../src/voucher/json.ts';

const parse = (s: string) => parseJsonStrict(new TextEncoder().encode(s));

describe('parseJsonStrict scan', () => {
  it('duplicate member names are found through escapes', () => {
    expect(() => parse('{"nonce":"a","n\\u006fnce":"b"}')).toThrow(/duplicate JSON member "nonce"/);
    expect(() => parse('{"a\\"b":1,"a\\"b":2}')).toThrow(MalformedError);
    expect(() => parse('{"a\\\\":1,"a\\\\":2}')).toThrow(MalformedError);
  });

  it('escaped quotes and backslash runs inside values do not end the string early', () => {
    // a value ending in an escaped backslash, followed by a member with the same name as one inside the value
    expect(parse('{"x":"\\\\","y":"\\"y\\":1","z":"\\\\\\""}')).toEqual({ x: '\\', y: '"y":1', z: '\\"' });
    expect(() => parse('{"x":"\\\\","x":2}')).toThrow(/duplicate/);
    // a quoted name inside a value is not a member
    expect(parse('{"a":"{\\"a\\":1}"}')).toEqual({ a: '{"a":1}' });
  });

  it('same names in different objects are fine; brackets inside strings do not count for depth', () => {
    expect(parse('{"a":{"n":1},"b":{"n":2},"c":[{"n":3},{"n":4}]}')).toBeTruthy();
    expect(parse(`{"s":"${'['.repeat(100)}"}`)).toEqual({ s: '['.repeat(100) });
    expect(() => parse(`${'['.repeat(17)}${']'.repeat(17)}`)).toThrow(/deeper/);
  });

  it('unterminated strings and bad syntax are MalformedError', () => {
    for (const bad of ['{"a":"b', '{"a', '{"a":"b\\"}', '{"a":1,}', '']) expect(() => parse(bad), bad).toThrow(MalformedError);
  });
});

describe('decodeBase64 padding', () => {
  it('accepts one or two pad characters only where they belong', () => {
    expect(decodeBase64('YQ==')).toEqual(Uint8Array.of(0x61));
    expect(decodeBase64('YWI=')).toEqual(Uint8Array.of(0x61, 0x62));
    for (const bad of ['YQ===', 'Y===', '====', 'YWJj=', 'YQ=a', '=YQ=', 'YW=I', '=']) expect(decodeBase64(bad), bad).toBeUndefined();
    expect(decodeBase64('')).toEqual(new Uint8Array(0));
  });
});
