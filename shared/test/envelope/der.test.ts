import * as asn1js from 'asn1js';
import { describe, expect, it } from 'vitest';
import { children, octetString, oid, readTlv } from '../../src/envelope/der.ts';
import { MalformedError } from '../../src/errors.ts';

const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));

describe('DER/BER reader', () => {
  it('decodes OIDs like asn1js does', () => {
    for (const value of ['1.2.840.113549.1.9.16.1.40', '2.5.29.14', '0.9.2342.19200300.100.1.25', '2.999.1', '1.3.6.1.4.1.311.21.20']) {
      const der = new Uint8Array(new asn1js.ObjectIdentifier({ value }).toBER(false));
      expect(oid(der, readTlv(der, 0))).toBe(value);
    }
  });

  it('reads long-form lengths, indefinite lengths and constructed OCTET STRINGs', () => {
    const long = Uint8Array.from([0x04, 0x82, 0x01, 0x00, ...new Uint8Array(256).fill(7)]);
    expect(readTlv(long, 0).end).toBe(260);
    const ber = hex('24 80 04 02 6869 04 01 21 0000'); // "hi!" in two segments, indefinite length
    const t = readTlv(ber, 0);
    expect(t.end).toBe(ber.length);
    expect(Buffer.from(octetString(ber, t)).toString()).toBe('hi!');
    expect(children(ber, t)).toHaveLength(2);
  });

  it('rejects truncation, oversized lengths, indefinite primitives, runaway nesting and bad OIDs', () => {
    const bad = [
      hex('30'), hex('30 05 0101'), hex('04 85 0100000000'), hex('04 80 00 00'), hex('30 80 0500'),
      hex('1f'), hex('1f ffffffff7f 00'),
      Uint8Array.from([...Array.from({ length: 40 }, () => [0x30, 0x80]).flat(), ...new Uint8Array(80)]),
    ];
    for (const b of bad) expect(() => { const t = readTlv(b, 0); children(b, t); }).toThrow(MalformedError);
    for (const o of [hex('06 00'), hex('06 01 81'), hex('06 0a ffffffffffffffffff01')]) expect(() => oid(o, readTlv(o, 0))).toThrow(MalformedError);
  });
});
