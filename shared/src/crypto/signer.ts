/**
 * The signer abstraction: every signature in the stack (CMS, JWS, COSE, certificates, CRLs)
 * goes through this interface, so a PKCS#11 key can replace a software key without touching
 * the codecs.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';

export type SignatureAlgorithm = 'ES256' | 'ES384' | 'ES512';

export interface Signer {
  /** JOSE/COSE name of the algorithm this key signs with (hash + curve fixed together). */
  readonly algorithm: SignatureAlgorithm;
  /** Public half of the signing key. */
  readonly publicKey: KeyObject;
  /** Signer certificate first, then intermediates; may be empty for a bare key (e.g. while creating a root). */
  readonly certificates: readonly X509Certificate[];
  /**
   * Signs `data`: the signer hashes it with the algorithm's hash and returns the ECDSA
   * signature as IEEE P1363 (r || s, fixed width), the form JWS and COSE need.
   * CMS and X.509 callers convert with `p1363ToDer`.
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export const ALGORITHM_INFO: Record<SignatureAlgorithm, {
  hash: 'sha256' | 'sha384' | 'sha512';
  curve: 'P-256' | 'P-384' | 'P-521';
  coseAlg: number;
  /** OID of ecdsa-with-SHAxxx for X.509/CMS. */
  sigOid: string;
  hashOid: string;
  coordinateBytes: number;
}> = {
  ES256: { hash: 'sha256', curve: 'P-256', coseAlg: -7, sigOid: '1.2.840.10045.4.3.2', hashOid: '2.16.840.1.101.3.4.2.1', coordinateBytes: 32 },
  ES384: { hash: 'sha384', curve: 'P-384', coseAlg: -35, sigOid: '1.2.840.10045.4.3.3', hashOid: '2.16.840.1.101.3.4.2.2', coordinateBytes: 48 },
  ES512: { hash: 'sha512', curve: 'P-521', coseAlg: -36, sigOid: '1.2.840.10045.4.3.4', hashOid: '2.16.840.1.101.3.4.2.3', coordinateBytes: 66 },
};

const CURVE_TO_ALG: Record<string, SignatureAlgorithm> = {
  'prime256v1': 'ES256', 'P-256': 'ES256', 'secp384r1': 'ES384', 'P-384': 'ES384', 'secp521r1': 'ES512', 'P-521': 'ES512',
};

/** The algorithm an EC public or private key signs with. */
export function algorithmForKey(key: KeyObject): SignatureAlgorithm {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const alg = curve ? CURVE_TO_ALG[curve] : undefined;
  if (!alg) throw new TypeError(`unsupported key: ${key.asymmetricKeyType ?? 'unknown'} ${curve ?? ''} (EC P-256/P-384/P-521 expected)`);
  return alg;
}

export function algorithmFromCose(alg: number): SignatureAlgorithm | undefined {
  for (const [name, info] of Object.entries(ALGORITHM_INFO)) if (info.coseAlg === alg) return name as SignatureAlgorithm;
  return undefined;
}
