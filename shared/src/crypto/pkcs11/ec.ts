/** EC key encodings PKCS#11 uses (CKA_EC_PARAMS, CKA_EC_POINT) to and from node:crypto KeyObjects. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { HsmError } from './errors.ts';

export type Curve = 'P-256' | 'P-384' | 'P-521';

/** DER of the namedCurve OBJECT IDENTIFIER — the only CKA_EC_PARAMS form accepted (no explicit parameters). */
export const CURVE_PARAMS: Record<Curve, string> = {
  'P-256': '06082a8648ce3d030107', // prime256v1 1.2.840.10045.3.1.7
  'P-384': '06052b81040022',       // secp384r1 1.3.132.0.34
  'P-521': '06052b81040023',       // secp521r1 1.3.132.0.35
};
const COORD: Record<Curve, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

export function curveFromParams(params: Uint8Array): Curve {
  const hex = Buffer.from(params).toString('hex');
  for (const [curve, der] of Object.entries(CURVE_PARAMS)) if (der === hex) return curve as Curve;
  throw new HsmError('key-unusable', `unsupported CKA_EC_PARAMS ${hex.slice(0, 40)} (P-256, P-384 or P-521 named curve expected)`);
}

/**
 * CKA_EC_POINT is specified as the DER OCTET STRING wrapping the uncompressed point; some
 * tokens return the bare point. Accept both, nothing else.
 */
export function unwrapEcPoint(value: Uint8Array, curve: Curve): Uint8Array {
  const n = 1 + 2 * COORD[curve];
  if (value.length === n && value[0] === 0x04) return value;
  if (value[0] === 0x04) {
    let p = 1;
    let len = value[p++]!;
    if (len === 0x81) len = value[p++]!;
    else if (len > 0x80) len = -1;
    if (len === n && p + len === value.length && value[p] === 0x04) return value.subarray(p);
  }
  throw new HsmError('key-unusable', `CKA_EC_POINT is not an uncompressed ${curve} point`);
}

/** Builds the public KeyObject from the token's EC parameters and point (via JWK: no ASN.1 needed). */
export function ecPublicKey(params: Uint8Array, point: Uint8Array): KeyObject {
  const curve = curveFromParams(params);
  const raw = unwrapEcPoint(point, curve);
  const c = COORD[curve];
  try {
    return createPublicKey({
      format: 'jwk',
      key: { kty: 'EC', crv: curve, x: Buffer.from(raw.subarray(1, 1 + c)).toString('base64url'), y: Buffer.from(raw.subarray(1 + c)).toString('base64url') },
    });
  } catch (e) {
    // node rejects points not on the curve.
    throw new HsmError('key-unusable', `token public key is not a valid ${curve} point`, { cause: e });
  }
}

/** The DER OCTET STRING form of a public key's uncompressed point (for comparing with CKA_EC_POINT). */
export function ecPointOf(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  return Uint8Array.from([0x04, ...x, ...y]);
}
