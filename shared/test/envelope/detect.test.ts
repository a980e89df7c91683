import { describe, expect, it } from 'vitest';
import { detectFormat, inspectEnvelope } from '../../src/envelope/index.ts';
import { readVector } from '../helpers/vectors.ts';

describe('detectFormat', () => {
  it('recognises the published artifacts of each format', () => {
    expect(detectFormat(readVector('rfc8995/voucher_00-D0-E5-F2-00-02.der'))).toBe('cms');
    expect(detectFormat(readVector('rfc8995/voucher_00-D0-E5-F2-00-02.b64'))).toBe('cms');
    expect(detectFormat(readVector('jws-voucher/voucher.jws.json'))).toBe('jws');
    expect(detectFormat(readVector('jws-voucher/legacy-compact-00/voucher_01.compact.jws'))).toBe('jws');
    expect(detectFormat(readVector('cbrski/voucher.cose'))).toBe('cose');
  });

  it('knows an untagged COSE_Sign1 and a flattened JWS, and nothing else', () => {
    expect(detectFormat(Uint8Array.from([0x84, 0x43, 0xa1, 0x01, 0x26]))).toBe('cose');
    expect(detectFormat(Buffer.from('  {"payload":"e30","protected":"e30","signature":"AA"}'))).toBe('jws');
    expect(detectFormat(readVector('rfc8995/voucher_00-D0-E5-F2-00-02.econtent.json'))).toBeUndefined(); // unsigned voucher JSON
    expect(detectFormat(Buffer.from('{not json'))).toBeUndefined();
    expect(detectFormat(new Uint8Array(0))).toBeUndefined();
    expect(detectFormat(Buffer.from('hello'))).toBeUndefined();
    expect(detectFormat(Uint8Array.from([0xa1, 0x01, 0x02]))).toBeUndefined();
  });

  it('inspectEnvelope returns the payload and carried certificates without verifying', () => {
    const cms = inspectEnvelope('cms', readVector('rfc8995/parboiled_vr_00-D0-E5-F2-00-02.der'));
    expect(cms.embedded.map((c) => c.subject)).toHaveLength(2);
    expect(Buffer.from(cms.payload).equals(Buffer.from(readVector('rfc8995/parboiled_vr_00-D0-E5-F2-00-02.econtent.json')))).toBe(true);
    expect(inspectEnvelope('jws', readVector('jws-voucher/pvr.jws.json')).embedded).toHaveLength(1);
    expect(inspectEnvelope('cose', readVector('cbrski/rvr.cose')).embedded).toHaveLength(2);
    expect(inspectEnvelope('cose', readVector('cbrski/pvr.cose')).embedded).toHaveLength(0);
  });
});
