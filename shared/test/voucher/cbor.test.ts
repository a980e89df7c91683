import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MalformedError, VoucherValidationError } from '../../src/errors.ts';
import { Tag, cborDecode, cborEncode } from '../../src/voucher/cbor-codec.ts';
import { decodeVoucherCbor, encodeVoucherCbor } from '../../src/voucher/cbor.ts';
import { leavesFor } from '../../src/voucher/leaves.ts';
import { readVector, readVectorText } from '../helpers/vectors.ts';
import { IDEVID_ISSUER, fullRequest, fullVoucher, hex } from './fixtures.ts';

const strict = { strict: true } as const;
const lenient = { strict: false } as const;

function err(fn: () => unknown): Error {
  try { fn(); } catch (e) { return e as Error; }
  throw new Error('expected an error');
}

/** Payload (third element) of a tagged COSE_Sign1 vector. */
function cosePayload(name: string): Uint8Array {
  const t = cborDecode(readVector(`cbrski/${name}.cose`)) as Tag;
  return (t.value as Uint8Array[])[2]!;
}

const enc = (top: unknown, entries: Array<[unknown, unknown]>): Uint8Array => cborEncode(new Map([[top, new Map(entries)]]));

describe('YANG-CBOR round trip', () => {
  for (const keys of ['sid', 'names'] as const) {
    it(`carries every leaf of ietf-voucher (${keys} keys)`, () => {
      const data = fullVoucher();
      const bytes = encodeVoucherCbor('voucher', data, { keys });
      const inner = (cborDecode(bytes) as Map<unknown, Map<unknown, unknown>>).get(keys === 'sid' ? 2451 : 'ietf-voucher:voucher')!;
      expect([...inner.keys()]).toEqual(leavesFor('voucher').map((l) => (keys === 'sid' ? l.voucherDelta : l.yang)));
      expect(inner.get(keys === 'sid' ? 1 : 'assertion')).toBe(1); // logged
      const back = decodeVoucherCbor(bytes, { ...strict, kind: 'voucher' });
      expect(back).toEqual({ kind: 'voucher', data, unknown: [] });
    });

    it(`carries every leaf of ietf-voucher-request (${keys} keys)`, () => {
      const data = fullRequest();
      const bytes = encodeVoucherCbor('voucher-request', data, { keys });
      const inner = (cborDecode(bytes) as Map<unknown, Map<unknown, unknown>>).get(keys === 'sid' ? 2501 : 'ietf-voucher-request:voucher')!;
      expect([...inner.keys()]).toEqual(leavesFor('voucher-request').map((l) => (keys === 'sid' ? l.requestDelta : l.yang)));
      expect(inner.get(keys === 'sid' ? 1 : 'assertion')).toBe(3); // agent-proximity
      expect(inner.get(keys === 'sid' ? 15 : 'agent-sign-cert')).toEqual(data.agentSignCert);
      expect(inner.get(keys === 'sid' ? 21 : 'extensions')).toEqual(['ext-a', 305823299950]);
      expect(decodeVoucherCbor(bytes, { ...strict, kind: 'voucher-request' }).data).toEqual(data);
    });
  }

  it('writes SID deltas under the absolute top SID by default', () => {
    const bytes = encodeVoucherCbor('voucher-request', { serialNumber: 'JADA123456789', nonce: hex('23BFBBC9C2BCF213'), assertion: 'proximity' });
    expect(Buffer.from(bytes).toString('hex')).toBe('a11909c5a30102074823bfbbc9c2bcf2130d6d4a414441313233343536373839');
  });

  it('writes extension data as 47(module SID) and reads it back', () => {
    const data = { serialNumber: 'x', nonce: hex('831D5198A6CA2C7F'), extensions: [305823299950] };
    const bytes = encodeVoucherCbor('voucher', data, { extensionData: new Map([[305823299950, new Map([[1, 'my-ext-leaf1-data']])]]) });
    const inner = (cborDecode(bytes) as Map<number, Map<unknown, unknown>>).get(2451)!;
    expect([...inner.keys()]).toEqual([7, 11, 15, new Tag(305823299950, 47)]);
    const back = decodeVoucherCbor(bytes, strict);
    expect(back.extensionData).toEqual(new Map([[305823299950, new Map([[1, 'my-ext-leaf1-data']])]]));
    expect(() => encodeVoucherCbor('voucher', data, { extensionData: new Map([[99, 1]]) })).toThrow(/not listed/);
  });
});

describe('cBRSKI COSE payloads', () => {
  it('pvr.cose: assertion proximity, nonce, registrar SPKI, serial (keys 1, 7, 12, 13 under 2501)', () => {
    const p = cosePayload('pvr');
    expect([...(cborDecode(p) as Map<number, Map<number, unknown>>).get(2501)!.keys()]).toEqual([1, 7, 12, 13]);
    const d = decodeVoucherCbor(p, { ...strict, kind: 'voucher-request' });
    const spki = new Uint8Array(createPublicKey(readVectorText('cbrski/registrar.pem')).export({ type: 'spki', format: 'der' }));
    expect(d.data).toEqual({
      assertion: 'proximity',
      nonce: hex('23BFBBC9C2BCF213'),
      proximityRegistrarPubk: spki,
      serialNumber: 'JADA123456789',
    });
    expect(d.data.proximityRegistrarPubk).toHaveLength(91);
  });

  it('rvr.cose: idevid-issuer, copied nonce and the full tagged PVR (keys 1, 2, 5, 7, 9, 13)', () => {
    const p = cosePayload('rvr');
    expect([...(cborDecode(p) as Map<number, Map<number, unknown>>).get(2501)!.keys()]).toEqual([1, 2, 5, 7, 9, 13]);
    const d = decodeVoucherCbor(p, strict);
    expect(d.kind).toBe('voucher-request');
    expect(d.data.assertion).toBe('proximity');
    expect(d.data.createdOn).toMatch(/^2022-12-06T/);
    expect(d.data.idevidIssuer).toHaveLength(26);
    expect(d.data.idevidIssuer!.subarray(0, 6)).toEqual(IDEVID_ISSUER.subarray(0, 6));
    expect(d.data.nonce).toEqual(hex('23BFBBC9C2BCF213'));
    expect(d.data.priorSignedVoucherRequest).toEqual(readVector('cbrski/pvr.cose'));
    expect(d.data.serialNumber).toBe('JADA123456789');
  });

  it('voucher.cose: deltas 1, 2, 3, 7, 8, 11 under 2451', () => {
    const p = cosePayload('voucher');
    expect([...(cborDecode(p) as Map<number, Map<number, unknown>>).get(2451)!.keys()]).toEqual([1, 2, 3, 7, 8, 11]);
    const d = decodeVoucherCbor(p, { ...strict, kind: 'voucher' });
    expect(d.data.assertion).toBe('proximity');
    expect(d.data.createdOn).toBe('2022-12-06T20:23:30.708Z');
    expect(d.data.domainCertRevocationChecks).toBe(false);
    expect(d.data.nonce).toEqual(hex('57EED786AD404907'));
    expect(d.data.pinnedDomainCert![0]).toBe(0x30);
    expect(d.data.serialNumber).toBe('JADA123456789');
    // Re-encoding with SID keys reproduces the signed payload byte for byte.
    expect(encodeVoucherCbor('voucher', d.data)).toEqual(p);
  });

  it('rejects the 2019 historical vectors (tag-1 date / experimental SIDs)', () => {
    for (const f of ['vr_00-D0-E5-F2-00-03.vrq', 'voucher_00-D0-E5-F2-00-03.vch', 'parboiled_vr_00-D0-E5-F2-00-03.vrq']) {
      const payload = ((cborDecode(readVector(`cbrski/historical/${f}`)) as Tag).value as Uint8Array[])[2]!;
      expect(() => decodeVoucherCbor(payload, lenient)).toThrow();
    }
  });
});

describe('key forms', () => {
  it('accepts names, deltas and tag-47 absolute SIDs mixed (cBRSKI example 2 style)', () => {
    const bytes = enc('ietf-voucher-request:voucher', [
      ['assertion', 2], [new Tag(2503, 47), '2022-12-05T19:19:19.536Z'], [7, hex('831D5198A6CA2C7F')],
      ['idevid-issuer', IDEVID_ISSUER], [new Tag(2514, 47), 'JADA123456789'], ['prior-signed-voucher-request', hex('a11909')],
    ]);
    expect(decodeVoucherCbor(bytes, strict).data).toEqual({
      assertion: 'proximity', createdOn: '2022-12-05T19:19:19.536Z', nonce: hex('831D5198A6CA2C7F'), idevidIssuer: IDEVID_ISSUER,
      serialNumber: 'JADA123456789', priorSignedVoucherRequest: hex('a11909'),
    });
  });

  it('accepts the assertion as an enum name and a single bstr agent-sign-cert', () => {
    const d = decodeVoucherCbor(enc(2501, [[1, 'agent-proximity'], [13, 's'], [15, hex('3000')]]), strict);
    expect(d.data).toEqual({ assertion: 'agent-proximity', serialNumber: 's', agentSignCert: [hex('3000')] });
  });

  it('rejects the same leaf written twice in different key forms', () => {
    const e = err(() => decodeVoucherCbor(enc(2451, [[11, 'a'], ['serial-number', 'b']]), lenient));
    expect((e as VoucherValidationError).leaf).toBe('serial-number');
    expect(() => decodeVoucherCbor(enc(2451, [[7, hex('0000000000000000')], [new Tag(2458, 47), hex('1111111111111111')]]), lenient))
      .toThrow(/nonce: appears more than once/);
  });

  it('decodes with the table of the module named by the top key (delta 11 differs)', () => {
    expect(decodeVoucherCbor(enc(2451, [[11, 's']]), strict).data).toEqual({ serialNumber: 's' });
    const e = err(() => decodeVoucherCbor(enc(2501, [[11, 's'], [13, 'x']]), strict));
    expect((e as VoucherValidationError).leaf).toBe('proximity-registrar-pubk-sha256');
  });

  it('treats a tag-47 SID of the other module as unknown', () => {
    const bytes = enc(2501, [[13, 's'], [new Tag(2462, 47), 'x']]);
    expect(err(() => decodeVoucherCbor(bytes, strict)).message).toMatch(/unknown key 47\(2462\)/);
    expect(decodeVoucherCbor(bytes, lenient).unknown).toEqual(['47(2462)']);
  });

  it('accepts the name ietf-voucher:voucher as a request root only with legacyNames + kind; SID 2451 stays a voucher', () => {
    const bytes = enc('ietf-voucher:voucher', [['serial-number', 's'], ['proximity-registrar-cert', hex('3000')]]);
    const d = decodeVoucherCbor(bytes, { strict: true, kind: 'voucher-request', legacyNames: true });
    expect(d).toEqual({ kind: 'voucher-request', data: { serialNumber: 's', proximityRegistrarCert: hex('3000') }, unknown: [] });
    expect(() => decodeVoucherCbor(bytes, { strict: true, kind: 'voucher-request' })).toThrow(VoucherValidationError);
    expect(() => decodeVoucherCbor(enc(2451, [[11, 's']]), { strict: true, kind: 'voucher-request', legacyNames: true }))
      .toThrow(/expected ietf-voucher-request:voucher/);
    const prm = enc('ietf-voucher-request-prm:voucher', [['serial-number', 's']]);
    expect(decodeVoucherCbor(prm, { strict: true, legacyNames: true }).kind).toBe('voucher-request');
    expect(() => decodeVoucherCbor(prm, strict)).toThrow(/no 2451/);
  });
});

describe('8366bis extension diagnostic example (digest §11 #10)', () => {
  // The diag file elides the certificate bytes; placeholders of the right shape are used here.
  const build = (extensionsKey: number): Uint8Array => enc(2451, [
    [2, '2016-10-07T19:31:42Z'], [1, 1], [11, 'JADA123456789'], [5, IDEVID_ISSUER], [8, hex('30820122')],
    [7, hex('831D5198A6CA2C7F')], [extensionsKey, [305823299950]], [new Tag(305823299950, 47), new Map([[1, 'my-ext-leaf1-data']])],
  ]);

  it('as printed (key 17) is rejected in strict mode: 17 is not a voucher leaf', () => {
    expect(readVectorText('rfc8366bis/voucher-example-extension.cbor.diag')).toMatch(/17: \[305823299950\]/);
    const e = err(() => decodeVoucherCbor(build(17), strict));
    expect((e as VoucherValidationError).leaf).toBe('17');
    expect(e.message).toMatch(/unknown keys 17, 47\(305823299950\)/);
    const d = decodeVoucherCbor(build(17), lenient);
    expect(d.unknown).toEqual(['17', '47(305823299950)']);
    expect(d.data.extensions).toBeUndefined();
  });

  it('corrected (key 15 = 2466 − 2451) decodes with the extension data', () => {
    const d = decodeVoucherCbor(build(15), strict);
    expect(d.data.extensions).toEqual([305823299950]);
    expect(d.data.assertion).toBe('logged');
    expect(d.extensionData).toEqual(new Map([[305823299950, new Map([[1, 'my-ext-leaf1-data']])]]));
  });
});

describe('YANG-CBOR negatives', () => {
  it('rejects historical 1001xxx SIDs as top key, delta or tag-47 key, in either mode', () => {
    for (const bytes of [
      enc(1001154, [[1, 'proximity']]),
      enc(new Tag(1001100, 47), [[1, 1]]),
      enc(2501, [[13, 's'], [1001106, 'x']]),
      enc(2451, [[11, 's'], [new Tag(1001105, 47), 'x']]),
    ]) {
      for (const mode of [strict, lenient]) expect(() => decodeVoucherCbor(bytes, mode)).toThrow(/1001xxx/);
    }
  });

  it('rejects unknown deltas in strict mode and lists them in lenient mode', () => {
    const bytes = enc(2451, [[11, 's'], [99, 1], ['colour', 'blue']]);
    expect(err(() => decodeVoucherCbor(bytes, strict)).message).toMatch(/unknown keys 99, "colour"/);
    expect(decodeVoucherCbor(bytes, lenient)).toEqual({ kind: 'voucher', data: { serialNumber: 's' }, unknown: ['99', '"colour"'] });
  });

  const wrong: Array<[number, unknown, string, RegExp]> = [
    [11, 5, 'serial-number', /must be a string/],
    [11, hex('41'), 'serial-number', /must be a string/],
    [7, 'AAAAAAAAAAA=', 'nonce', /must be binary/],
    [7, new Uint8Array(7), 'nonce', /8..32 bytes, got 7/],
    [7, new Uint8Array(33), 'nonce', /8..32 bytes, got 33/],
    [1, 4, 'assertion', /unknown value 4/],
    [1, -1, 'assertion', /unknown value -1/],
    [1, 'trusted', 'assertion', /unknown value/],
    [2, 1665000000, 'created-on', /date-and-time/],
    [2, '2022-12-06 20:23:30Z', 'created-on', /RFC 3339/],
    [3, 0, 'domain-cert-revocation-checks', /boolean/],
    [8, [hex('30')], 'pinned-domain-cert', /must be binary/],
    [15, [-1], 'extensions', /extension names or SIDs/],
  ];
  for (const [key, value, leaf, msg] of wrong) {
    it(`rejects voucher delta ${key} (${leaf}) = ${String(value)}`, () => {
      const e = err(() => decodeVoucherCbor(enc(2451, [[11, 'JADA'], [key, value]].filter((x, i) => i === 0 ? key !== 11 : true) as Array<[unknown, unknown]>), lenient));
      expect(e).toBeInstanceOf(VoucherValidationError);
      expect((e as VoucherValidationError).leaf).toBe(leaf);
      expect(e.message).toMatch(msg);
    });
  }

  it('requires serial-number', () => {
    expect((err(() => decodeVoucherCbor(enc(2451, [[7, new Uint8Array(8)]]), lenient)) as VoucherValidationError).leaf).toBe('serial-number');
  });

  it('rejects structural problems as MalformedError', () => {
    expect(() => decodeVoucherCbor(cborEncode([1]), lenient)).toThrow(MalformedError);
    expect(() => decodeVoucherCbor(hex('a1 1909c5 a1 0d 62 c328'), lenient)).toThrow(/UTF-8/);
    expect(() => decodeVoucherCbor(hex('a1 1909c5 a2 0d 61 61 0d 61 62'), lenient)).toThrow(/duplicate map key/);
    expect(() => decodeVoucherCbor(hex('a1 1909c5 a1 02 c1 01'), lenient)).toThrow(/tag 1 /);
    expect(() => decodeVoucherCbor(hex('a1 1909c5 a1 0d d2 61 61'), lenient)).toThrow(/tag 18/);
    expect(() => decodeVoucherCbor(cborEncode(new Map<unknown, unknown>([[2451, new Map([[11, 's']])], [2501, new Map([[13, 's']])]])), lenient))
      .toThrow(/more than one/);
    expect(() => decodeVoucherCbor(cborEncode(new Map([[2451, [1]]])), lenient)).toThrow(/must be a map/);
    expect(() => decodeVoucherCbor(cborEncode(new Map([[9999, new Map()]])), lenient)).toThrow(/no 2451/);
    const deep = cborEncode(new Map([[2451, new Map<unknown, unknown>([[11, 's'], [99, [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]])]]));
    expect(() => decodeVoucherCbor(deep, lenient)).toThrow(/nesting deeper/);
    expect(() => decodeVoucherCbor(new Uint8Array(70_000), lenient)).toThrow(/exceeds the limit/);
  });
});
