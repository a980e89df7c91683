/** Every object identifier the PKI, EST and voucher code uses (digest §8.1), in one place. */

export const OID = {
  // BRSKI / ANIMA
  masaUrl: '1.3.6.1.5.5.7.1.32', // id-pe-masa-url
  animaJsonVoucher: '1.2.840.113549.1.9.16.1.40', // id-ct-animaJSONVoucher
  hardwareModuleName: '1.3.6.1.5.5.7.8.4',
  // CMS content types
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  // extended key usages
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  cmcRA: '1.3.6.1.5.5.7.3.28',
  anyExtendedKeyUsage: '2.5.29.37.0',
  // certificate / CRL extensions
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  // PKCS#9 attributes (CSR, csrattrs)
  challengePassword: '1.2.840.113549.1.9.7',
  extensionRequest: '1.2.840.113549.1.9.14',
  // keys and signatures
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  secp256r1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
} as const;

/** Distinguished-name attribute short names ↔ OIDs (RFC 4514 names plus serialNumber). */
export const NAME_ATTRIBUTE_OID = {
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  DC: '0.9.2342.19200300.100.1.25',
  emailAddress: '1.2.840.113549.1.9.1',
} as const;

export type NameAttribute = keyof typeof NAME_ATTRIBUTE_OID;

export const NAME_ATTRIBUTE_BY_OID: Record<string, NameAttribute> = Object.fromEntries(
  Object.entries(NAME_ATTRIBUTE_OID).map(([k, v]) => [v, k as NameAttribute]),
);

/** Signature algorithm OID → node:crypto hash name, for verifying CSRs, CRLs and foreign certificates. */
export const SIGNATURE_HASH: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
};

export const CURVE_OID: Record<'P-256' | 'P-384' | 'P-521', string> = {
  'P-256': OID.secp256r1,
  'P-384': OID.secp384r1,
  'P-521': OID.secp521r1,
};
