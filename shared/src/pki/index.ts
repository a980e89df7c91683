/** PKI toolkit: keys, names/extensions, certificate issuance and profiles, identity helpers, CSRs, CRLs. */
export * from './oids.ts';
export * from './keys.ts';
export * from './certificate.ts';
export * from './identity.ts';
export * from './csr.ts';
export * from './crl.ts';
export { normalizeSerialHex, parseDer, bytesEqual } from './der.ts';
export * from './chain.ts';
