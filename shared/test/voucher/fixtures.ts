/** Voucher test data with every leaf of each module set to a valid, distinguishable value. */
import type { Voucher, VoucherRequest } from '../../src/voucher/model.ts';

export const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** 26-byte idevid-issuer in the 8366bis form `04 18 30 16 80 14 <20-byte key id>`. */
export const IDEVID_ISSUER = hex('041830168014' + 'cb8d98ca74c51b58dde7acef869a9443a8d666a6');

export function fullVoucher(): Voucher {
  return {
    createdOn: '2024-05-01T10:00:00.123Z',
    expiresOn: '2024-05-01T10:20:00Z',
    assertion: 'logged',
    serialNumber: 'JADA123456789',
    idevidIssuer: IDEVID_ISSUER,
    pinnedDomainCert: bytes(40, 0x30),
    pinnedDomainPubk: bytes(91, 0x31),
    pinnedDomainPubkSha256: bytes(32, 0x32),
    domainCertRevocationChecks: true,
    lastRenewalDate: '2025-01-01T00:00:00+02:00',
    nonce: bytes(16, 0x33),
    estDomain: 'https://est.example.com/.well-known/est',
    additionalConfigurationUrl: 'https://config.example.com/device',
    manufacturerProprietary: hex('a1016568656c6c6f'),
    extensions: ['example-my-extension'],
  };
}

export function fullRequest(): VoucherRequest {
  return {
    createdOn: '2024-05-01T10:00:00Z',
    expiresOn: '2024-05-02T10:00:00Z',
    assertion: 'agent-proximity',
    serialNumber: 'vendor-pledge4711',
    idevidIssuer: IDEVID_ISSUER,
    pinnedDomainCert: bytes(40, 0x40),
    pinnedDomainPubk: bytes(91, 0x41),
    pinnedDomainPubkSha256: bytes(32, 0x42),
    domainCertRevocationChecks: false,
    lastRenewalDate: '2024-06-01T00:00:00Z',
    nonce: bytes(8, 0x43),
    estDomain: 'https://est.example.net',
    additionalConfigurationUrl: 'https://config.example.net/x',
    manufacturerProprietary: hex('f6'),
    extensions: ['ext-a', 305823299950],
    priorSignedVoucherRequest: hex('d28443a10126a0'),
    proximityRegistrarCert: bytes(50, 0x44),
    proximityRegistrarPubk: bytes(91, 0x45),
    proximityRegistrarPubkSha256: bytes(32, 0x46),
    agentSignedData: new TextEncoder().encode('{"payload":"x","signatures":[]}'),
    agentProvidedProximityRegistrarCert: bytes(60, 0x47),
    agentSignCert: [bytes(30, 0x48), bytes(31, 0x49)],
  };
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const json = (v: unknown): Uint8Array => utf8(JSON.stringify(v));
