import { describe, expect, it } from 'vitest';
import { MalformedError, SizeLimitError, VoucherValidationError } from '../../src/errors.ts';
import { decodeVoucherJson, encodeVoucherJson, parseJsonStrict } from '../../src/voucher/json.ts';
import { leavesFor } from '../../src/voucher/leaves.ts';
import { decodeBase64, encodeBase64 } from '../../src/voucher/base64.ts';
import { readVector } from '../helpers/vectors.ts';
import { IDEVID_ISSUER, fullRequest, fullVoucher, json, utf8 } from './fixtures.ts';

const strict = { strict: true } as const;
const lenient = { strict: false } as const;

function err(fn: () => unknown): Error {
  try { fn(); } catch (e) { return e as Error; }
  throw new Error('expected an error');
}

describe('voucher JSON round trip', () => {
  it('carries every leaf of ietf-voucher', () => {
    const data = fullVoucher();
    const bytes = encodeVoucherJson('voucher', data);
    const obj = JSON.parse(Buffer.from(bytes).toString('utf8'))['ietf-voucher:voucher'];
    expect(Object.keys(obj).sort()).toEqual(leavesFor('voucher').map((l) => l.yang).sort());
    expect(obj['assertion']).toBe('logged');
    expect(obj['domain-cert-revocation-checks']).toBe(true);
    expect(obj['nonce']).toBe(encodeBase64(data.nonce!));
    expect(obj['idevid-issuer']).toBe('BBgwFoAUy42YynTFG1jd56zvhpqUQ6jWZqY=');
    const back = decodeVoucherJson(bytes, { ...strict, kind: 'voucher' });
    expect(back.kind).toBe('voucher');
    expect(back.data).toEqual(data);
    expect(back.unknown).toEqual([]);
    expect(back.nonceText).toBe(obj['nonce']);
  });

  it('carries every leaf of ietf-voucher-request (agent-sign-cert as a JSON array)', () => {
    const data = fullRequest();
    const bytes = encodeVoucherJson('voucher-request', data);
    const obj = JSON.parse(Buffer.from(bytes).toString('utf8'))['ietf-voucher-request:voucher'];
    expect(Object.keys(obj).sort()).toEqual(leavesFor('voucher-request').map((l) => l.yang).sort());
    expect(obj['agent-sign-cert']).toEqual(data.agentSignCert!.map(encodeBase64));
    // RFC 7951: uint64 members of the extensions union are strings.
    expect(obj['extensions']).toEqual(['ext-a', '305823299950']);
    const back = decodeVoucherJson(bytes, { ...strict, kind: 'voucher-request' });
    expect(back.data).toEqual({ ...data, extensions: ['ext-a', '305823299950'] });
  });

  it('echoes a nonce string verbatim (unpadded base64url stays as received)', () => {
    const rx = decodeVoucherJson(readVector('rfc8995/vr_00-D0-E5-F2-00-02.econtent.json'), strict);
    expect(rx.nonceText).toBe('-_XE9zK9q8Ll1qylMtLKeg');
    const out = encodeVoucherJson('voucher', { serialNumber: 'x', nonce: rx.data.nonce, pinnedDomainCert: new Uint8Array([1]) },
      { nonceText: rx.nonceText });
    expect(Buffer.from(out).toString()).toContain('"nonce":"-_XE9zK9q8Ll1qylMtLKeg"');
    expect(() => encodeVoucherJson('voucher', { serialNumber: 'x', nonce: new Uint8Array(16) }, { nonceText: rx.nonceText }))
      .toThrow(VoucherValidationError);
    expect(() => encodeVoucherJson('voucher', { serialNumber: 'x' }, { nonceText: rx.nonceText })).toThrow(/nonce/);
  });

  it('emits and decodes extension data listed in extensions', () => {
    const data = { serialNumber: 'x', extensions: ['my-ext'] };
    const bytes = encodeVoucherJson('voucher', data, { extensionData: new Map([['my-ext', { leaf1: 'v' }]]) });
    expect(JSON.parse(Buffer.from(bytes).toString())['ietf-voucher:voucher']['extension:my-ext']).toEqual({ leaf1: 'v' });
    const back = decodeVoucherJson(bytes, strict);
    expect(back.extensionData).toEqual(new Map([['my-ext', { leaf1: 'v' }]]));
    expect(() => encodeVoucherJson('voucher', data, { extensionData: new Map([['other', 1]]) })).toThrow(/not listed/);
  });

  it('refuses to encode a request-only leaf in a voucher, or a wrongly typed value', () => {
    expect(err(() => encodeVoucherJson('voucher', { serialNumber: 'x', proximityRegistrarCert: new Uint8Array(3) } as never)).message)
      .toMatch(/proximity-registrar-cert: not a leaf of ietf-voucher:voucher/);
    expect(() => encodeVoucherJson('voucher', { serialNumber: 'x', nonce: new Uint8Array(7) })).toThrow(/nonce/);
  });
});

describe('published JSON payloads', () => {
  const cases: Array<[string, 'voucher' | 'voucher-request', string, string | undefined, boolean?]> = [
    ['rfc8995/vr_00-D0-E5-F2-00-02.econtent.json', 'voucher-request', '00-D0-E5-F2-00-02', '-_XE9zK9q8Ll1qylMtLKeg'],
    ['rfc8995/parboiled_vr_00-D0-E5-F2-00-02.econtent.json', 'voucher-request', '00-D0-E5-F2-00-02', '-_XE9zK9q8Ll1qylMtLKeg'],
    ['rfc8995/voucher_00-D0-E5-F2-00-02.econtent.json', 'voucher', '00-D0-E5-F2-00-02', '-_XE9zK9q8Ll1qylMtLKeg'],
    ['rfc8995/rvr-2020_00-D0-E5-F2-00-02.econtent.json', 'voucher-request', '00-D0-E5-F2-00-02', 'aMjgueKUT-22wVimj6z27Q'],
    ['rfc8366bis/vr_00-D0-E5-F2-00-02.econtent.json', 'voucher-request', '00-D0-E5-F2-00-02', '4vTsppS2CeqBzhEdoifM2g'],
    ['rfc8366bis/voucher_00-D0-E5-F2-00-02.econtent.json', 'voucher', '00-D0-E5-F2-00-02', '4vTsppS2CeqBzhEdoifM2g'],
    ['rfc8366bis/voucher-example-ephemeral.json', 'voucher', 'JADA123456789', 'base64encodedvalue=='],
    ['rfc8366bis/voucher-example-nonceless.json', 'voucher', 'JADA123456789', undefined],
    ['rfc8366bis/voucher-example-extension.json', 'voucher', 'JADA123456789', 'base64encodedvalue=='],
    ['rfc8366bis/voucher-jws-example.payload.json', 'voucher', 'caffe-98745', '62a2e7693d82fcda2624de58fb6722e5'],
    ['rfc8995/rfc-text-pvr-example.json', 'voucher-request', 'JADA123456789', '62a2e7693d82fcda2624de58fb6722e5'],
    ['rfc8995/rfc-text-rvr-example.json', 'voucher-request', 'JADA123456789', '62a2e7693d82fcda2624de58fb6722e5'],
    ['rfc8995/rfc-text-rvr-offline-example.json', 'voucher-request', 'JADA123456789', undefined],
    ['rfc8995/rfc-text-voucher-example.json', 'voucher', 'JADA123456789', '62a2e7693d82fcda2624de58fb6722e5'],
    ['jws-voucher/pvr.payload.json', 'voucher-request', 'kit-987654321', 'TauvK+Y/cc2RfIFvpZzfKQ=='],
    ['jws-voucher/rvr.payload.json', 'voucher-request', 'kit-987654321', 'TauvK+Y/cc2RfIFvpZzfKQ=='],
    ['jws-voucher/voucher.payload.json', 'voucher', 'kit-987654321', 'TauvK+Y/cc2RfIFvpZzfKQ=='],
    ['brski-prm/voucher.payload.json', 'voucher', '0123456789', 'L3IJ6hptHCIQoNxaab9HWA=='],
    ['brski-prm/voucher-registrar-countersigned.payload.json', 'voucher', '0123456789', 'khNyKpMthccia1rXw44/vQ=='],
    ['brski-prm/text-examples/pvr-data.json', 'voucher-request', 'vendor-pledge4711', 'eDs++/FuDHGUnRxN3E14CQ=='],
    ['brski-prm/text-examples/voucher-data.json', 'voucher', 'vendor-pledge4711', 'base64encodedvalue=='],
    ['brski-prm/pvr.payload.json', 'voucher-request', '0123456789', 'khNyKpMthccia1rXw44/vQ==', true],
    ['brski-prm/rvr.payload.json', 'voucher-request', '0123456789', 'khNyKpMthccia1rXw44/vQ==', true],
  ];
  for (const [file, kind, serial, nonce, legacy] of cases) {
    it(`decodes ${file} strictly`, () => {
      const d = decodeVoucherJson(readVector(file), { strict: true, kind, legacyNames: legacy });
      expect(d.kind).toBe(kind);
      expect(d.data.serialNumber).toBe(serial);
      expect(d.nonceText).toBe(nonce);
      expect(d.unknown).toEqual([]);
      if (nonce) expect(d.data.nonce).toEqual(decodeBase64(nonce));
    });
  }

  it('needs legacyNames for the obsolete PRM root', () => {
    expect(err(() => decodeVoucherJson(readVector('brski-prm/pvr.payload.json'), strict)).message).toMatch(/needs legacyNames/);
  });

  it('accepts ietf-voucher:voucher as a request root only with legacyNames and kind voucher-request', () => {
    const bytes = json({ 'ietf-voucher:voucher': { 'serial-number': 'x', 'nonce': 'AAAAAAAAAAA=' } });
    expect(decodeVoucherJson(bytes, { strict: true, kind: 'voucher-request', legacyNames: true }).kind).toBe('voucher-request');
    expect(() => decodeVoucherJson(bytes, { strict: true, kind: 'voucher-request' })).toThrow(/expected ietf-voucher-request:voucher/);
    expect(decodeVoucherJson(bytes, { strict: true, legacyNames: true }).kind).toBe('voucher');
  });

  it('decodes PRM agent-sign-cert and the JWS-voucher prior-signed-voucher-request bytes', () => {
    const rvr = decodeVoucherJson(readVector('brski-prm/rvr.payload.json'), { strict: true, legacyNames: true });
    expect(rvr.data.agentSignCert).toHaveLength(1);
    expect(rvr.data.agentSignCert![0]![0]).toBe(0x30);
    expect(rvr.data.idevidIssuer!.subarray(0, 6)).toEqual(IDEVID_ISSUER.subarray(0, 6));
    const jrvr = decodeVoucherJson(readVector('jws-voucher/rvr.payload.json'), strict);
    expect(jrvr.data.priorSignedVoucherRequest).toEqual(readVector('jws-voucher/rvr.prior-signed-voucher-request.bin'));
  });

  it('decodes the extension example with its extension data', () => {
    const d = decodeVoucherJson(readVector('rfc8366bis/voucher-example-extension.json'), strict);
    expect(d.data.extensions).toEqual(['example-my-extension']);
    expect(d.extensionData).toEqual(new Map([['example-my-extension', { 'my-ext-leaf1': 'my-ext-leaf1-data' }]]));
  });

  it('rejects the PRM text example whose agent-sign-cert holds "..."', () => {
    expect(err(() => decodeVoucherJson(readVector('brski-prm/text-examples/rvr-data.json'), strict)).message)
      .toMatch(/agent-sign-cert: is not valid base64/);
  });
});

describe('voucher JSON negatives', () => {
  const v = (inner: Record<string, unknown>): Uint8Array => json({ 'ietf-voucher:voucher': { 'serial-number': 'x', ...inner } });

  it('rejects unknown members in strict mode, naming them; lists them in lenient mode', () => {
    const bytes = v({ 'colour': 'blue', 'extension:not-listed': {} });
    const e = err(() => decodeVoucherJson(bytes, strict));
    expect(e).toBeInstanceOf(VoucherValidationError);
    expect((e as VoucherValidationError).leaf).toBe('colour');
    expect(e.message).toMatch(/"colour", "extension:not-listed"/);
    const d = decodeVoucherJson(bytes, lenient);
    expect(d.unknown).toEqual(['colour', 'extension:not-listed']);
    expect(d.data).toEqual({ serialNumber: 'x' });
  });

  it('treats request-only leaves in a voucher as unknown', () => {
    expect((err(() => decodeVoucherJson(v({ 'proximity-registrar-cert': 'AAAA' }), strict)) as VoucherValidationError).leaf)
      .toBe('proximity-registrar-cert');
  });

  it('rejects unknown top-level members in strict mode only', () => {
    const bytes = json({ 'ietf-voucher:voucher': { 'serial-number': 'x' }, 'other:thing': 1 });
    expect(() => decodeVoucherJson(bytes, strict)).toThrow(/other:thing/);
    expect(decodeVoucherJson(bytes, lenient).unknown).toEqual(['other:thing']);
  });

  const wrongType: Array<[string, unknown, RegExp]> = [
    ['serial-number', 5, /serial-number: must be a string/],
    ['created-on', 1700000000, /created-on: must be a date-and-time string/],
    ['created-on', '2024-13-01T00:00:00Z', /created-on: not an RFC 3339/],
    ['expires-on', '2024-02-30T00:00:00Z', /expires-on: not an RFC 3339/],
    ['last-renewal-date', '2024-01-01 00:00:00Z', /last-renewal-date: not an RFC 3339/],
    ['assertion', 'trusted', /assertion: unknown value "trusted"/],
    ['assertion', 2, /assertion: unknown value 2/],
    ['domain-cert-revocation-checks', 'true', /domain-cert-revocation-checks: must be a boolean/],
    ['nonce', 12345, /nonce: must be a base64 string/],
    ['nonce', 'AAAAAAAAAA', /nonce: must be 8..32 bytes, got 7/],
    ['nonce', encodeBase64(new Uint8Array(33)), /nonce: must be 8..32 bytes, got 33/],
    ['pinned-domain-cert', 'not base64!', /pinned-domain-cert: is not valid base64/],
    ['pinned-domain-cert', ['AAAA'], /pinned-domain-cert: must be a base64 string/],
    ['est-domain', 'no scheme here', /est-domain: must be a URI/],
    ['additional-configuration-url', 42, /additional-configuration-url: must be a URI/],
    ['extensions', 'one', /extensions: must be a list/],
    ['extensions', ['a', 'a'], /extensions: duplicate entry/],
    ['manufacturer-proprietary', null, /manufacturer-proprietary: must be a base64 string/],
  ];
  for (const [leaf, value, msg] of wrongType) {
    it(`rejects ${leaf} = ${JSON.stringify(value)} in either mode`, () => {
      for (const mode of [strict, lenient]) {
        const e = err(() => decodeVoucherJson(v({ [leaf]: value }), mode));
        expect(e).toBeInstanceOf(VoucherValidationError);
        expect((e as VoucherValidationError).leaf).toBe(leaf);
        expect(e.message).toMatch(msg);
      }
    });
  }

  it('requires serial-number', () => {
    const e = err(() => decodeVoucherJson(json({ 'ietf-voucher:voucher': { 'nonce': 'AAAAAAAAAAA=' } }), lenient));
    expect((e as VoucherValidationError).leaf).toBe('serial-number');
  });

  it('rejects a wrong kind, a missing container and a non-object container', () => {
    expect(() => decodeVoucherJson(v({}), { strict: true, kind: 'voucher-request' })).toThrow(VoucherValidationError);
    expect(() => decodeVoucherJson(json({ foo: {} }), lenient)).toThrow(/no ietf-voucher:voucher/);
    expect(() => decodeVoucherJson(json({ 'ietf-voucher:voucher': [] }), lenient)).toThrow(/must be an object/);
    expect(() => decodeVoucherJson(json([1]), lenient)).toThrow(MalformedError);
    expect(() => decodeVoucherJson(json({ 'ietf-voucher:voucher': { 'serial-number': 'x' }, 'ietf-voucher-request:voucher': {} }), lenient))
      .toThrow(/more than one/);
  });

  it('rejects non-UTF-8, syntax errors, duplicate members, deep nesting and oversized input', () => {
    expect(() => decodeVoucherJson(new Uint8Array([0x7b, 0xff, 0x7d]), lenient)).toThrow(/not valid UTF-8/);
    expect(() => decodeVoucherJson(utf8('{"ietf-voucher:voucher":'), lenient)).toThrow(MalformedError);
    expect(() => decodeVoucherJson(utf8('\uFEFF{"ietf-voucher:voucher":{"serial-number":"x"}}'), lenient)).toThrow(MalformedError);
    const dup = utf8('{"ietf-voucher:voucher":{"serial-number":"x","nonce":"AAAAAAAAAAA=","nonce":"BBBBBBBBBBB="}}');
    expect(err(() => decodeVoucherJson(dup, lenient)).message).toMatch(/duplicate JSON member "nonce"/);
    const dupEscaped = utf8('{"ietf-voucher:voucher":{"serial-number":"x","serial-\\u006eumber":"y"}}');
    expect(() => decodeVoucherJson(dupEscaped, lenient)).toThrow(/duplicate/);
    const deep = utf8(`{"ietf-voucher:voucher":{"serial-number":"x","extension:e":${'['.repeat(20)}${']'.repeat(20)}}}`);
    expect(() => decodeVoucherJson(deep, lenient)).toThrow(/nested deeper/);
    expect(() => decodeVoucherJson(utf8('['.repeat(100_000)), { strict: false, maxBytes: 200_000 })).toThrow(MalformedError);
    const big = v({ 'manufacturer-proprietary': encodeBase64(new Uint8Array(70_000)) });
    expect(() => decodeVoucherJson(big, lenient)).toThrow(SizeLimitError);
    expect(decodeVoucherJson(big, { strict: true, maxBytes: 200_000 }).data.manufacturerProprietary).toHaveLength(70_000);
  });

  it('accepts both base64 alphabets, padded or not, and \\/ escapes', () => {
    const d = decodeVoucherJson(utf8('{"ietf-voucher:voucher":{"serial-number":"x","nonce":"-_XE9zK9q8Ll1qylMtLKeg",' +
      '"manufacturer-proprietary":"+\\/+\\/AQ","idevid-issuer":"BBgwFoAUy42YynTFG1jd56zvhpqUQ6jWZqY"}}'), strict);
    expect([...d.data.manufacturerProprietary!]).toEqual([0xfb, 0xff, 0xbf, 0x01]);
    expect(d.data.idevidIssuer).toEqual(IDEVID_ISSUER);
    expect(d.data.nonce).toHaveLength(16);
  });

  it('parseJsonStrict ignores brackets and quotes inside strings when scanning', () => {
    expect(parseJsonStrict(utf8('{"a":"[[[[[[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{{{{{{{{{","b":[1,{"a":1}]}'))).toEqual({
      a: '[[[[[[[[[[[[[[[[[[[["{{{{{{{{{{{{{{{{{{{{', b: [1, { a: 1 }],
    });
  });
});
