/**
 * COSE_Sign1 envelope for `application/voucher+cose` (RFC 9052, cBRSKI, digest §6.3):
 * tag 18, protected {1: alg}, attached YANG-CBOR payload, Sig_structure
 * ["Signature1", protected, h'', payload]. Certificates travel in x5bag (32) / x5chain (33)
 * (RFC 9360); the PVR carries none (the signer is the DTLS client certificate). Without a
 * signerCertificate the signer is the first carried, supplied or anchor certificate whose key
 * verifies the signature.
 *
 * Written on cbor-x directly instead of a COSE library: Sign1 is a four-element array, and the
 * signature must come from the Signer interface (PKCS#11), which COSE libraries do not take.
 */
import { verify as nodeVerify, type X509Certificate } from 'node:crypto';
import { Tag } from 'cbor-x';
import { algorithmFromCose, ALGORITHM_INFO, type Signer } from '../crypto/signer.ts';
import { BrskiError, MalformedError, SignatureError } from '../errors.ts';
import { cborDecode, cborEncode } from '../voucher/cbor-codec.ts';
import {
  checkSize, DEFAULT_MAX_BYTES, parseCertificate, validateSignerChain,
  type InspectedEnvelope, type VerifiedEnvelope, type VerifyOptions,
} from './types.ts';

export const COSE_SIGN1_TAG = 18;
export const HEADER = { alg: 1, crit: 2, kid: 4, x5bag: 32, x5chain: 33 } as const;
const EDDSA = -8;

export interface SignCoseOptions {
  /** Chain for the receiver that the signature need not cover (MASA → registrar). */
  unprotectedX5bag?: readonly X509Certificate[];
  /** Chain the pledge must rely on (only when it does not pre-store the key). */
  protectedX5bag?: readonly X509Certificate[];
}

interface ParsedSign1 {
  protectedBytes: Uint8Array;
  protectedMap: Map<unknown, unknown>;
  unprotected: Map<unknown, unknown>;
  payload: Uint8Array;
  signature: Uint8Array;
  tagged: boolean;
}

// ---- signing ----------------------------------------------------------------------------------

/** COSE_X509: a single certificate as bstr, several as an array of bstr (RFC 9360 §2). */
function coseX509(certs: readonly X509Certificate[]): Uint8Array | Uint8Array[] {
  const ders = certs.map((c) => new Uint8Array(c.raw));
  return ders.length === 1 ? ders[0]! : ders;
}

function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return cborEncode(['Signature1', protectedBytes, new Uint8Array(0), payload]);
}

export async function signCose(payload: Uint8Array, signer: Signer, opts: SignCoseOptions = {}): Promise<Uint8Array> {
  const prot = new Map<number, unknown>([[HEADER.alg, ALGORITHM_INFO[signer.algorithm].coseAlg]]);
  if (opts.protectedX5bag?.length) prot.set(HEADER.x5bag, coseX509(opts.protectedX5bag));
  const unprot = new Map<number, unknown>();
  if (opts.unprotectedX5bag?.length) unprot.set(HEADER.x5bag, coseX509(opts.unprotectedX5bag));
  const protectedBytes = cborEncode(prot);
  const signature = await signer.sign(sigStructure(protectedBytes, payload));
  return cborEncode(new Tag([protectedBytes, unprot, payload, signature], COSE_SIGN1_TAG));
}

// ---- parsing ----------------------------------------------------------------------------------

function isBytes(v: unknown): v is Uint8Array { return v instanceof Uint8Array; }

function parseSign1(bytes: Uint8Array, maxBytes: number | undefined): ParsedSign1 {
  checkSize(bytes, maxBytes);
  let item: unknown;
  try {
    item = cborDecode(bytes, { maxBytes: maxBytes ?? DEFAULT_MAX_BYTES });
  } catch (e) {
    if (e instanceof BrskiError) throw e;
    throw new MalformedError('COSE: not well-formed CBOR', { cause: e });
  }
  let tagged = false;
  if (item instanceof Tag) {
    if (item.tag !== COSE_SIGN1_TAG) throw new MalformedError(`COSE: tag ${item.tag} is not COSE_Sign1 (18)`);
    item = item.value;
    tagged = true;
  }
  if (!Array.isArray(item) || item.length !== 4) throw new MalformedError('COSE: COSE_Sign1 must be an array of 4');
  const [p, u, payload, signature] = item as unknown[];
  if (!isBytes(p)) throw new MalformedError('COSE: protected header must be a bstr');
  if (!(u instanceof Map)) throw new MalformedError('COSE: unprotected header must be a map');
  if (payload === null || payload === undefined) throw new MalformedError('COSE: detached payloads are not supported for vouchers');
  if (!isBytes(payload)) throw new MalformedError('COSE: payload must be a bstr');
  if (!isBytes(signature)) throw new MalformedError('COSE: signature must be a bstr');
  let protectedMap: Map<unknown, unknown>;
  if (p.length === 0) {
    protectedMap = new Map(); // h'' means an empty protected header (RFC 9052 §3)
  } else {
    let decoded: unknown;
    try {
      decoded = cborDecode(p);
    } catch (e) {
      if (e instanceof BrskiError) throw e;
      throw new MalformedError('COSE: protected header is not well-formed CBOR', { cause: e });
    }
    if (!(decoded instanceof Map)) throw new MalformedError('COSE: protected header must encode a map');
    protectedMap = decoded;
  }
  for (const k of protectedMap.keys()) {
    if (u.has(k)) throw new MalformedError(`COSE: header label ${String(k)} in both protected and unprotected headers`);
  }
  return { protectedBytes: p, protectedMap, unprotected: u, payload, signature, tagged };
}

function certsFrom(value: unknown, label: string): X509Certificate[] {
  if (value === undefined) return [];
  const items = isBytes(value) ? [value] : Array.isArray(value) ? value : undefined;
  if (!items || items.length === 0 || !items.every(isBytes)) throw new MalformedError(`COSE: ${label} must be a bstr or an array of bstr`);
  return items.map((der, i) => parseCertificate(der, `COSE ${label}[${i}]`));
}

/** x5chain first (its [0] is the signer by definition), then the bags; protected before unprotected. */
function embeddedCertificates(s: ParsedSign1): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const h of [s.protectedMap, s.unprotected]) out.push(...certsFrom(h.get(HEADER.x5chain), 'x5chain'));
  for (const h of [s.protectedMap, s.unprotected]) out.push(...certsFrom(h.get(HEADER.x5bag), 'x5bag'));
  const seen = new Set<string>();
  return out.filter((c) => (seen.has(c.fingerprint256) ? false : (seen.add(c.fingerprint256), true)));
}

/** Parse only: payload and every certificate in x5bag/x5chain. NO verification. */
export function inspectCose(bytes: Uint8Array, opts: { maxBytes?: number } = {}): InspectedEnvelope {
  const s = parseSign1(bytes, opts.maxBytes);
  return { format: 'cose', payload: s.payload, embedded: embeddedCertificates(s) };
}

// ---- verification -----------------------------------------------------------------------------

function checkSignature(cert: X509Certificate, alg: number, tbs: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = cert.publicKey;
    if (alg === EDDSA) return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448'
      ? nodeVerify(null, tbs, key, signature) : false;
    const name = algorithmFromCose(alg)!;
    const info = ALGORITHM_INFO[name];
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const curveOk = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[info.curve] === curve;
    if (key.asymmetricKeyType !== 'ec' || !curveOk || signature.length !== info.coordinateBytes * 2) return false;
    return nodeVerify(info.hash, tbs, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

export async function verifyCose(bytes: Uint8Array, opts: VerifyOptions): Promise<VerifiedEnvelope> {
  return verifyCoseSync(bytes, opts);
}

export function verifyCoseSync(bytes: Uint8Array, opts: VerifyOptions): VerifiedEnvelope {
  const s = parseSign1(bytes, opts.maxBytes);
  const warnings: string[] = s.tagged ? [] : ['untagged COSE_Sign1'];
  if (s.protectedMap.has(HEADER.crit)) throw new MalformedError('COSE: critical header parameters are not supported');
  const alg = s.protectedMap.get(HEADER.alg);
  if (alg === undefined) {
    throw new MalformedError(s.unprotected.has(HEADER.alg) ? 'COSE: alg must be in the protected header' : 'COSE: missing alg in the protected header');
  }
  if (typeof alg !== 'number' || (alg !== EDDSA && !algorithmFromCose(alg))) throw new SignatureError(`COSE: unsupported alg ${String(alg)}`);

  const embedded = opts.ignoreEmbedded ? [] : embeddedCertificates(s);
  const tbs = sigStructure(s.protectedBytes, s.payload);
  let signer: X509Certificate | undefined;
  if (opts.signerCertificate) {
    if (!checkSignature(opts.signerCertificate, alg, tbs, s.signature)) throw new SignatureError('COSE: signature does not verify with the signer certificate');
    signer = opts.signerCertificate;
  } else {
    // Carried certificates first; then out-of-band ones and the anchors themselves, for the
    // pledge that receives a voucher whose x5bag the registrar stripped and that pre-stores
    // the MASA key (cBRSKI). Whichever verifies must still chain to an anchor below.
    const candidates = [...embedded, ...(opts.extraCertificates ?? []), ...opts.anchors];
    signer = candidates.find((c) => checkSignature(c, alg, tbs, s.signature));
    if (!signer) throw new SignatureError('COSE: signature does not verify with any carried, supplied or anchor certificate');
  }
  const chain = validateSignerChain(signer, embedded, opts);
  return { format: 'cose', payload: s.payload, signer, chain, embedded, warnings };
}

/**
 * Removes x5bag/x5chain from the unprotected header (registrar → pledge, cBRSKI §voucher).
 * The signature stays valid: the unprotected map is not covered by it.
 */
export function stripUnprotectedCertificates(bytes: Uint8Array, opts: { maxBytes?: number } = {}): Uint8Array {
  const s = parseSign1(bytes, opts.maxBytes);
  const unprot = new Map(s.unprotected);
  unprot.delete(HEADER.x5bag);
  unprot.delete(HEADER.x5chain);
  return cborEncode(new Tag([s.protectedBytes, unprot, s.payload, s.signature], COSE_SIGN1_TAG));
}
