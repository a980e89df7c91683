import { describe, expect, it } from 'vitest';
import { VoucherValidationError } from '../../src/errors.ts';
import type { MessageRole, VoucherRequest } from '../../src/voucher/model.ts';
import { isIdevidIssuerForm, isRfc3339DateTime, parseVoucherDate, validateVoucherData, type ValidateOptions }
  from '../../src/voucher/validate.ts';
import { decodeVoucherJson } from '../../src/voucher/json.ts';
import { decodeVoucherCbor } from '../../src/voucher/cbor.ts';
import { cborDecode, type Tag } from '../../src/voucher/cbor-codec.ts';
import { readVector } from '../helpers/vectors.ts';
import { IDEVID_ISSUER, bytes, hex } from './fixtures.ts';

function leafOf(data: VoucherRequest, role: MessageRole, opts?: ValidateOptions): string | undefined {
  try {
    validateVoucherData(data, role, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(VoucherValidationError);
    return (e as VoucherValidationError).leaf ?? '(none)';
  }
  return undefined;
}

const nonce = bytes(16, 1);
const cert = bytes(40, 0x30);
const voucher = (extra: VoucherRequest | object = {}): VoucherRequest => ({ serialNumber: 'SN1', nonce, pinnedDomainCert: cert, ...extra });
const pvr = (extra: object = {}): VoucherRequest => ({ serialNumber: 'SN1', nonce, assertion: 'proximity', proximityRegistrarCert: cert, ...extra });
const prmPvr = (extra: object = {}): VoucherRequest => ({
  serialNumber: 'SN1', nonce, assertion: 'agent-proximity', createdOn: '2024-06-24T09:01:24.556Z',
  agentProvidedProximityRegistrarCert: cert, agentSignedData: bytes(20, 0x7b), ...extra,
});
const rvr = (extra: object = {}): VoucherRequest => ({ serialNumber: 'SN1', nonce, idevidIssuer: IDEVID_ISSUER, ...extra });
const without = <T extends object>(o: T, k: keyof T): T => { const c = { ...o }; delete c[k]; return c; };

describe('per-leaf content rules (every role)', () => {
  const cases: Array<[string, object, string]> = [
    ['nonce of 7 bytes', { nonce: bytes(7, 1) }, 'nonce'],
    ['nonce of 33 bytes', { nonce: bytes(33, 1) }, 'nonce'],
    ['nonce as text', { nonce: 'AAAAAAAAAAA=' }, 'nonce'],
    ['empty serial-number', { serialNumber: '' }, 'serial-number'],
    ['numeric serial-number', { serialNumber: 7 }, 'serial-number'],
    ['31-byte pinned-domain-pubk-sha256', { pinnedDomainPubkSha256: bytes(31, 1) }, 'pinned-domain-pubk-sha256'],
    ['33-byte pinned-domain-pubk-sha256', { pinnedDomainPubkSha256: bytes(33, 1) }, 'pinned-domain-pubk-sha256'],
    ['idevid-issuer placeholder', { idevidIssuer: Buffer.from('base64encodedvalue==', 'base64') }, 'idevid-issuer'],
    ['idevid-issuer with a wrong inner length', { idevidIssuer: hex('0418 3017 8014' + '00'.repeat(20)) }, 'idevid-issuer'],
    ['empty pinned-domain-cert', { pinnedDomainCert: new Uint8Array(0) }, 'pinned-domain-cert'],
    ['bad created-on', { createdOn: '2024-02-30T00:00:00Z' }, 'created-on'],
    ['lower-case t in created-on', { createdOn: '2024-02-03t00:00:00Z' }, 'created-on'],
    ['bad offset in expires-on', { expiresOn: '2024-02-03T00:00:00+24:00' }, 'expires-on'],
    ['unknown assertion', { assertion: 'trusted' }, 'assertion'],
    ['non-boolean domain-cert-revocation-checks', { domainCertRevocationChecks: 1 }, 'domain-cert-revocation-checks'],
    ['bad est-domain', { estDomain: 'est.example.com' }, 'est-domain'],
    ['request-only leaf in a voucher', { proximityRegistrarCert: cert }, 'proximity-registrar-cert'],
    ['unknown property', { colour: 'blue' }, 'colour'],
  ];
  for (const [what, extra, leaf] of cases) {
    it(`rejects ${what}`, () => expect(leafOf(voucher(extra), 'voucher')).toBe(leaf));
  }

  it('rejects a 31-byte proximity-registrar-pubk-sha256 in a PVR and a missing serial-number anywhere', () => {
    expect(leafOf(pvr({ proximityRegistrarPubkSha256: bytes(31, 1) }), 'pvr')).toBe('proximity-registrar-pubk-sha256');
    for (const role of ['pvr', 'rvr', 'voucher'] as const) {
      expect(leafOf(without(role === 'voucher' ? voucher() : role === 'pvr' ? pvr() : rvr(), 'serialNumber'), role)).toBe('serial-number');
    }
  });

  it('accepts the bare-SEQUENCE idevid-issuer form (DECISION 4) and RFC 3339 corner cases', () => {
    expect(isIdevidIssuerForm(IDEVID_ISSUER)).toBe(true);
    expect(isIdevidIssuerForm(IDEVID_ISSUER.subarray(2))).toBe(true);
    expect(isIdevidIssuerForm(hex('04 03 30 02 00'))).toBe(false);
    expect(isIdevidIssuerForm(hex('31 01 00'))).toBe(false);
    expect(isIdevidIssuerForm(hex('04 02 30 00 00'))).toBe(false);
    for (const s of ['2024-02-29T23:59:60Z', '2021-04-13T17:43:23.747-04:00', '2022-07-10T17:08:18.720123+05:30', '1999-12-31T00:00:00Z']) {
      expect(isRfc3339DateTime(s), s).toBe(true);
    }
    for (const s of ['2023-02-29T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T00:60:00Z', '2024-01-01T00:00:61Z', '2024-01-01T00:00:00',
      '2024-01-01T00:00:00.Z', '24-01-01T00:00:00Z', '2024-01-01T00:00:00+0100', ' 2024-01-01T00:00:00Z']) {
      expect(isRfc3339DateTime(s), s).toBe(false);
    }
    expect(parseVoucherDate('2021-04-13T17:43:23.747-04:00').toISOString()).toBe('2021-04-13T21:43:23.747Z');
    expect(() => parseVoucherDate('yesterday', 'expires-on')).toThrow(/expires-on/);
  });
});

describe('voucher rules', () => {
  it('accepts a nonced voucher with any one pin', () => {
    for (const pin of [{ pinnedDomainCert: cert }, { pinnedDomainPubk: bytes(91, 2) }, { pinnedDomainPubkSha256: bytes(32, 3) }]) {
      expect(leafOf({ serialNumber: 'S', nonce, ...pin }, 'voucher')).toBeUndefined();
    }
  });
  it('needs a pin', () => expect(leafOf(without(voucher(), 'pinnedDomainCert'), 'voucher')).toBe('pinned-domain-cert'));
  it('needs a nonce or expires-on', () => {
    expect(leafOf(without(voucher(), 'nonce'), 'voucher')).toBe('expires-on');
    expect(leafOf(voucher({ nonce: undefined, expiresOn: '2030-01-01T00:00:00Z' }), 'voucher')).toBeUndefined();
  });
  it('accepts nonce + expires-on (DECISION 3) unless strictExclusive or emit', () => {
    const both = voucher({ expiresOn: '2030-01-01T00:00:00Z', createdOn: '2029-01-01T00:00:00Z', assertion: 'logged' });
    expect(leafOf(both, 'voucher')).toBeUndefined();
    expect(leafOf(both, 'voucher', { strictExclusive: true })).toBe('expires-on');
    expect(leafOf(both, 'voucher', { flavour: 'emit' })).toBe('expires-on');
  });
  it('last-renewal-date requires expires-on', () => {
    expect(leafOf(voucher({ lastRenewalDate: '2030-01-01T00:00:00Z' }), 'voucher')).toBe('last-renewal-date');
    expect(leafOf(voucher({ nonce: undefined, lastRenewalDate: '2030-01-01T00:00:00Z', expiresOn: '2029-01-01T00:00:00Z' }), 'voucher'))
      .toBeUndefined();
  });
  it('emit flavour needs created-on and assertion (DECISION 2); parse does not', () => {
    expect(leafOf(voucher(), 'voucher')).toBeUndefined();
    expect(leafOf(voucher({ assertion: 'proximity' }), 'voucher', { flavour: 'emit' })).toBe('created-on');
    expect(leafOf(voucher({ createdOn: '2024-01-01T00:00:00Z' }), 'voucher', { flavour: 'emit' })).toBe('assertion');
    expect(leafOf(voucher({ createdOn: '2024-01-01T00:00:00Z', assertion: 'proximity' }), 'voucher', { flavour: 'emit' })).toBeUndefined();
  });
});

describe('pledge voucher-request rules', () => {
  it('accepts BRSKI, cBRSKI and PRM PVRs, with or without an assertion (jws-voucher PVR has none)', () => {
    expect(leafOf(pvr(), 'pvr')).toBeUndefined();
    expect(leafOf(without(pvr(), 'assertion'), 'pvr')).toBeUndefined();
    expect(leafOf(pvr({ proximityRegistrarCert: undefined, proximityRegistrarPubk: bytes(91, 1) }), 'pvr')).toBeUndefined();
    expect(leafOf(pvr({ proximityRegistrarCert: undefined, proximityRegistrarPubkSha256: bytes(32, 1) }), 'pvr')).toBeUndefined();
    expect(leafOf(prmPvr(), 'pvr')).toBeUndefined();
  });
  it('needs a nonce', () => expect(leafOf(without(pvr(), 'nonce'), 'pvr')).toBe('nonce'));
  it('needs a proximity leaf for proximity', () => expect(leafOf(without(pvr(), 'proximityRegistrarCert'), 'pvr')).toBe('proximity-registrar-cert'));
  it('only asserts proximity or agent-proximity', () => {
    expect(leafOf(pvr({ assertion: 'logged' }), 'pvr')).toBe('assertion');
    expect(leafOf(pvr({ assertion: 'verified' }), 'pvr')).toBe('assertion');
  });
  it('PRM: needs agent-provided cert, agent-signed-data and created-on', () => {
    expect(leafOf(without(prmPvr(), 'agentProvidedProximityRegistrarCert'), 'pvr')).toBe('agent-provided-proximity-registrar-cert');
    expect(leafOf(without(prmPvr(), 'agentSignedData'), 'pvr')).toBe('agent-signed-data');
    expect(leafOf(without(prmPvr(), 'createdOn'), 'pvr')).toBe('created-on');
  });
  it('emit: needs an assertion and carries no pins, prior request or voucher-only leaves', () => {
    expect(leafOf(without(pvr(), 'assertion'), 'pvr', { flavour: 'emit' })).toBe('assertion');
    expect(leafOf(pvr({ pinnedDomainCert: cert }), 'pvr', { flavour: 'emit' })).toBe('pinned-domain-cert');
    expect(leafOf(pvr({ priorSignedVoucherRequest: cert }), 'pvr', { flavour: 'emit' })).toBe('prior-signed-voucher-request');
    expect(leafOf(pvr({ domainCertRevocationChecks: true }), 'pvr', { flavour: 'emit' })).toBe('domain-cert-revocation-checks');
    expect(leafOf(pvr({ pinnedDomainCert: cert }), 'pvr')).toBeUndefined();
  });
});

describe('registrar voucher-request rules', () => {
  it('accepts nonced and nonceless RVRs; idevid-issuer optional when parsing (DECISION 6)', () => {
    expect(leafOf(rvr(), 'rvr')).toBeUndefined();
    expect(leafOf(without(rvr(), 'nonce'), 'rvr')).toBeUndefined();
    expect(leafOf(without(rvr(), 'idevidIssuer'), 'rvr')).toBeUndefined();
  });
  it('must not carry proximity-registrar-cert', () => expect(leafOf(rvr({ proximityRegistrarCert: cert }), 'rvr')).toBe('proximity-registrar-cert'));
  it('emit: needs idevid-issuer; PRM needs created-on, nonce, prior request and agent-sign-cert; no pins', () => {
    expect(leafOf(without(rvr(), 'idevidIssuer'), 'rvr', { flavour: 'emit' })).toBe('idevid-issuer');
    const prm = rvr({ assertion: 'agent-proximity', createdOn: '2024-06-24T09:02:15.573Z', priorSignedVoucherRequest: cert, agentSignCert: [cert] });
    expect(leafOf(prm, 'rvr', { flavour: 'emit' })).toBeUndefined();
    for (const k of ['createdOn', 'nonce', 'priorSignedVoucherRequest', 'agentSignCert'] as const) {
      expect(leafOf(without(prm, k), 'rvr', { flavour: 'emit' })).toBe(k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
      expect(leafOf(without(prm, k), 'rvr')).toBeUndefined();
    }
    expect(leafOf(rvr({ pinnedDomainPubk: bytes(91, 1) }), 'rvr', { flavour: 'emit' })).toBe('pinned-domain-pubk');
    expect(leafOf(rvr({ lastRenewalDate: '2024-01-01T00:00:00Z' }), 'rvr', { flavour: 'emit' })).toBe('last-renewal-date');
  });
});

describe('published artifacts against the §5.3 table', () => {
  const json = (f: string, legacyNames = false): VoucherRequest => decodeVoucherJson(readVector(f), { strict: true, legacyNames }).data;
  const cose = (f: string): VoucherRequest => decodeVoucherCbor(((cborDecode(readVector(`cbrski/${f}.cose`)) as Tag).value as Uint8Array[])[2]!,
    { strict: true }).data;

  it('valid as parsed', () => {
    for (const f of ['rfc8995/vr_00-D0-E5-F2-00-02.econtent.json', 'rfc8366bis/vr_00-D0-E5-F2-00-02.econtent.json', 'jws-voucher/pvr.payload.json',
      'rfc8995/rfc-text-pvr-example.json']) expect(leafOf(json(f), 'pvr'), f).toBeUndefined();
    expect(leafOf(json('brski-prm/pvr.payload.json', true), 'pvr')).toBeUndefined();
    for (const f of ['rfc8995/parboiled_vr_00-D0-E5-F2-00-02.econtent.json', 'jws-voucher/rvr.payload.json']) expect(leafOf(json(f), 'rvr'), f).toBeUndefined();
    expect(leafOf(json('brski-prm/rvr.payload.json', true), 'rvr', { flavour: 'emit' })).toBeUndefined();
    for (const f of ['rfc8995/voucher_00-D0-E5-F2-00-02.econtent.json', 'rfc8366bis/voucher_00-D0-E5-F2-00-02.econtent.json',
      'jws-voucher/voucher.payload.json', 'brski-prm/voucher-registrar-countersigned.payload.json', 'rfc8366bis/voucher-jws-example.payload.json',
      'rfc8995/rfc-text-voucher-example.json']) expect(leafOf(json(f), 'voucher'), f).toBeUndefined();
    expect(leafOf(cose('pvr'), 'pvr')).toBeUndefined();
    expect(leafOf(cose('rvr'), 'rvr', { flavour: 'emit' })).toBeUndefined();
    expect(leafOf(cose('voucher'), 'voucher', { flavour: 'emit' })).toBeUndefined();
  });

  it('placeholders fail content validation although they decode', () => {
    expect(leafOf(json('rfc8366bis/voucher-example-nonceless.json'), 'voucher')).toBe('idevid-issuer');
    expect(leafOf(json('rfc8995/rfc-text-rvr-offline-example.json'), 'rvr')).toBe('idevid-issuer');
  });

  it('the RFC 8995 JSON RVR lacks idevid-issuer: fine to parse, not what we emit', () => {
    expect(leafOf(json('rfc8995/parboiled_vr_00-D0-E5-F2-00-02.econtent.json'), 'rvr', { flavour: 'emit' })).toBe('idevid-issuer');
  });
});
