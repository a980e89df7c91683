/**
 * JWS envelope for `application/voucher-jws+json` (draft-ietf-anima-jws-voucher, digest §6.2):
 * General JWS JSON Serialization, protected header {alg, typ: "voucher-jws+json", x5c}.
 *
 * Signing is done here rather than with `jose`: jose needs the private key (CryptoKey/KeyObject),
 * while every signature in this stack must go through the Signer interface (PKCS#11 later).
 * JWS needs nothing beyond base64url + one signature, so node:crypto verifies as well.
 */
import { constants, verify as nodeVerify, type X509Certificate } from 'node:crypto';
import type { Signer } from '../crypto/signer.ts';
import { BrskiError, MalformedError, SignatureError } from '../errors.ts';
import {
  checkSize, validateSignerChain,
  type InspectedEnvelope, type VerifiedEnvelope, type VerifyOptions,
} from './types.ts';
import { certificateFromBase64 } from './cert-cache.ts';

export const JWS_VOUCHER_TYP = 'voucher-jws+json';

export interface SignJwsOptions {
  /** `typ` header; default 'voucher-jws+json'; null omits it. */
  typ?: string | null;
}

export interface VerifyJwsOptions extends VerifyOptions {
  /** Accept the pre-2022 compact serialization (legacy devices only). Default false. */
  allowCompact?: boolean;
  /** Which signature to verify (default 0: the issuer's; PRM countersignatures follow it). */
  signatureIndex?: number;
}

export interface JwsSignatureResult {
  index: number;
  protectedHeader: Record<string, unknown>;
  verified?: VerifiedEnvelope;
  error?: BrskiError;
}

interface ParsedSignature {
  protectedB64: string;
  header: Record<string, unknown>;
  signature: Uint8Array;
  x5c: X509Certificate[];
}

interface ParsedJws {
  payloadB64: string;
  payload: Uint8Array;
  signatures: ParsedSignature[];
  compact: boolean;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const B64STD = /^[A-Za-z0-9+/]*={0,2}$/;
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;

const ALGS: Record<string, { hash: 'sha256' | 'sha384' | 'sha512'; kind: 'ec' | 'rsa' | 'rsa-pss'; curve?: string; size?: number }> = {
  ES256: { hash: 'sha256', kind: 'ec', curve: 'prime256v1', size: 64 },
  ES384: { hash: 'sha384', kind: 'ec', curve: 'secp384r1', size: 96 },
  ES512: { hash: 'sha512', kind: 'ec', curve: 'secp521r1', size: 132 },
  RS256: { hash: 'sha256', kind: 'rsa' }, RS384: { hash: 'sha384', kind: 'rsa' }, RS512: { hash: 'sha512', kind: 'rsa' },
  PS256: { hash: 'sha256', kind: 'rsa-pss' }, PS384: { hash: 'sha384', kind: 'rsa-pss' }, PS512: { hash: 'sha512', kind: 'rsa-pss' },
};

function b64url(data: Uint8Array | string): string {
  return Buffer.from(data).toString('base64url');
}

function fromB64url(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string') throw new MalformedError(`JWS: ${what} is not base64url`);
  const buf = Buffer.from(s, 'base64url');
  // Text that re-encodes to itself is canonical base64url (every character valid, no padding):
  // one native pass instead of a regex over the 2–6 KB payload. Anything else gets the full check.
  if (buf.toString('base64url') !== s && (!B64URL.test(s) || s.length % 4 === 1)) {
    throw new MalformedError(`JWS: ${what} is not base64url`);
  }
  return new Uint8Array(buf); // a copy: small Buffers are views into Node's shared pool
}

/** Stateless (non-streaming) strict UTF-8 decoder, shared instead of built per call. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

// ---- signing ----------------------------------------------------------------------------------

function protectedHeader(signer: Signer, typ: string | null | undefined): Record<string, unknown> {
  const header: Record<string, unknown> = { alg: signer.algorithm };
  if (typ !== null) header['typ'] = typ ?? JWS_VOUCHER_TYP;
  // Signer plus chain, without a self-signed anchor (digest §11 #14); standard base64 (RFC 7515 §4.1.6).
  const certs = signer.certificates.filter((c, i) => i === 0 || !c.checkIssued(c));
  if (certs.length > 0) header['x5c'] = certs.map((c) => c.raw.toString('base64'));
  return header;
}

async function signatureObject(payloadB64: string, signer: Signer, opts: SignJwsOptions) {
  const protectedB64 = b64url(JSON.stringify(protectedHeader(signer, opts.typ)));
  const sig = await signer.sign(Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii'));
  return { protected: protectedB64, signature: b64url(sig) };
}

/** General JWS JSON Serialization with one signature. */
export async function signJws(payload: Uint8Array, signer: Signer, opts: SignJwsOptions = {}): Promise<Uint8Array> {
  const payloadB64 = b64url(payload);
  const jws = { payload: payloadB64, signatures: [await signatureObject(payloadB64, signer, opts)] };
  return new TextEncoder().encode(JSON.stringify(jws));
}

/** Adds a signature over the same payload (PRM registrar countersignature). Does not verify the existing ones. */
export async function addJwsSignature(jwsBytes: Uint8Array, signer: Signer, opts: SignJwsOptions & { maxBytes?: number } = {}): Promise<Uint8Array> {
  checkSize(jwsBytes, opts.maxBytes);
  const obj = parseJson(jwsBytes);
  if (typeof obj['payload'] !== 'string' || !Array.isArray(obj['signatures'])) throw new MalformedError('JWS: General JSON serialization expected');
  const sigs = [...obj['signatures'] as unknown[], await signatureObject(obj['payload'], signer, opts)];
  return new TextEncoder().encode(JSON.stringify({ ...obj, signatures: sigs }));
}

// ---- parsing ----------------------------------------------------------------------------------

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch (e) {
    throw new MalformedError('JWS: not UTF-8', { cause: e });
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text); // JSON.parse resolves `\/` escapes (digest §6.2)
  } catch (e) {
    throw new MalformedError('JWS: not JSON', { cause: e });
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new MalformedError('JWS: JSON object expected');
  return obj as Record<string, unknown>;
}

function parseSignature(protectedB64: unknown, signatureB64: unknown, unprotected: unknown): ParsedSignature {
  if (typeof protectedB64 !== 'string' || protectedB64.length === 0) throw new MalformedError('JWS: protected header missing');
  let header: unknown;
  try {
    header = JSON.parse(UTF8.decode(fromB64url(protectedB64, 'protected header')));
  } catch (e) {
    if (e instanceof BrskiError) throw e;
    throw new MalformedError('JWS: protected header is not a JSON object', { cause: e });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new MalformedError('JWS: protected header is not a JSON object');
  const h = header as Record<string, unknown>;
  if (unprotected !== undefined && (typeof unprotected !== 'object' || unprotected === null || Array.isArray(unprotected))) {
    throw new MalformedError('JWS: unprotected header is not a JSON object');
  }
  const u = (unprotected ?? {}) as Record<string, unknown>;
  // x5c is authenticated by the chain check, so it may sit in either header; alg may not.
  const x5cValue = h['x5c'] ?? u['x5c'];
  const x5c: X509Certificate[] = [];
  if (x5cValue !== undefined) {
    if (!Array.isArray(x5cValue)) throw new MalformedError('JWS: x5c is not an array');
    x5cValue.forEach((v, i) => {
      if (typeof v !== 'string') throw new MalformedError(`JWS: x5c[${i}] is not standard base64`);
      try {
        x5c.push(certificateFromBase64(v, (text) => {
          if (!B64STD.test(text)) throw new MalformedError(`JWS: x5c[${i}] is not standard base64`);
        }));
      } catch (e) {
        if (e instanceof MalformedError) throw e;
        throw new MalformedError(`JWS x5c[${i}]: not a valid X.509 certificate`, { cause: e });
      }
    });
  }
  return { protectedB64, header: h, signature: fromB64url(signatureB64, 'signature'), x5c };
}

function parseJws(bytes: Uint8Array, allowCompact: boolean): ParsedJws {
  const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first !== 0x7b /* { */) {
    const text = Buffer.from(bytes).toString('latin1').trim();
    if (!COMPACT.test(text)) throw new MalformedError('JWS: neither JSON nor compact serialization');
    if (!allowCompact) throw new MalformedError('JWS: compact serialization is not accepted (General JSON serialization required)');
    const [p, pl, s] = text.split('.') as [string, string, string];
    return { payloadB64: pl, payload: fromB64url(pl, 'payload'), signatures: [parseSignature(p, s, undefined)], compact: true };
  }
  const obj = parseJson(bytes);
  if (!('signatures' in obj)) {
    throw new MalformedError('protected' in obj ? 'JWS: flattened serialization is not accepted (General JSON required)'
      : 'JWS: "signatures" member missing');
  }
  const sigs = obj['signatures'];
  if (!Array.isArray(sigs) || sigs.length === 0) throw new MalformedError('JWS: "signatures" must be a non-empty array');
  if (sigs.length > 16) throw new MalformedError('JWS: too many signatures');
  const payloadB64 = obj['payload'];
  if (typeof payloadB64 !== 'string') throw new MalformedError('JWS: "payload" missing (detached payloads are not supported)');
  const signatures = sigs.map((s: unknown) => {
    if (typeof s !== 'object' || s === null) throw new MalformedError('JWS: signature entry is not an object');
    const o = s as Record<string, unknown>;
    return parseSignature(o['protected'], o['signature'], o['header']);
  });
  return { payloadB64, payload: fromB64url(payloadB64, 'payload'), signatures, compact: false };
}

/** Parse only: payload and every x5c certificate. NO verification. */
export function inspectJws(bytes: Uint8Array, opts: { maxBytes?: number; allowCompact?: boolean } = {}): InspectedEnvelope {
  checkSize(bytes, opts.maxBytes);
  const parsed = parseJws(bytes, opts.allowCompact ?? true);
  return { format: 'jws', payload: parsed.payload, embedded: parsed.signatures.flatMap((s) => s.x5c) };
}

// ---- verification -----------------------------------------------------------------------------

function verifyOne(parsed: ParsedJws, sig: ParsedSignature, opts: VerifyOptions): VerifiedEnvelope {
  const { header } = sig;
  const warnings: string[] = parsed.compact ? ['compact JWS serialization (legacy)'] : [];
  if ('crit' in header) throw new MalformedError('JWS: "crit" header parameters are not supported');
  const alg = header['alg'];
  if (typeof alg !== 'string') throw new MalformedError('JWS: "alg" missing from the protected header');
  const info = ALGS[alg];
  if (!info) throw new SignatureError(`JWS: unsupported alg ${JSON.stringify(alg)}`);
  const typ = header['typ'];
  if (typ !== undefined) {
    const t = typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : '';
    if (t !== JWS_VOUCHER_TYP) throw new MalformedError(`JWS: typ ${JSON.stringify(typ)} is not ${JWS_VOUCHER_TYP}`);
  }
  const signer = opts.signerCertificate ?? sig.x5c[0];
  if (!signer) throw new SignatureError('JWS: no signer certificate (x5c missing and none supplied)');
  const key = signer.publicKey;
  if (info.kind === 'ec') {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== info.curve) {
      throw new SignatureError(`JWS: ${alg} does not match the signer key`);
    }
    if (sig.signature.length !== info.size) throw new SignatureError(`JWS: ${alg} signature must be ${info.size} bytes`);
  } else if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') {
    throw new SignatureError(`JWS: ${alg} does not match the signer key`);
  }
  const input = Buffer.from(`${sig.protectedB64}.${parsed.payloadB64}`, 'ascii');
  let ok = false;
  try {
    ok = info.kind === 'ec'
      ? nodeVerify(info.hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig.signature)
      : nodeVerify(info.hash, input, info.kind === 'rsa-pss'
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : { key, padding: constants.RSA_PKCS1_PADDING }, sig.signature);
  } catch (e) {
    throw new SignatureError('JWS: signature cannot be checked with the signer key', { cause: e });
  }
  if (!ok) throw new SignatureError('JWS: signature does not verify');
  const embedded = parsed.signatures.flatMap((s) => s.x5c);
  const chain = validateSignerChain(signer, sig.x5c, opts);
  return { format: 'jws', payload: parsed.payload, signer, chain, embedded, warnings };
}

/** Verifies one signature (default the first) of a General JSON JWS voucher. */
export async function verifyJws(bytes: Uint8Array, opts: VerifyJwsOptions): Promise<VerifiedEnvelope> {
  return verifyJwsSync(bytes, opts);
}

export function verifyJwsSync(bytes: Uint8Array, opts: VerifyJwsOptions): VerifiedEnvelope {
  checkSize(bytes, opts.maxBytes);
  const parsed = parseJws(bytes, opts.allowCompact ?? false);
  const index = opts.signatureIndex ?? 0;
  const sig = parsed.signatures[index];
  if (!sig) throw new SignatureError(`JWS: no signature #${index}`);
  return verifyOne(parsed, sig, opts);
}

/**
 * Verifies every signature of a (countersigned) JWS; each may have its own anchors, e.g. the
 * MASA's for [0] and the pinned domain CA for the registrar's [1]. Never throws for a
 * signature that fails: the per-signature error is returned instead.
 */
export function verifyJwsSignatures(bytes: Uint8Array,
  opts: VerifyJwsOptions | ((index: number, protectedHeader: Record<string, unknown>) => VerifyOptions)): JwsSignatureResult[] {
  const base = typeof opts === 'function' ? undefined : opts;
  checkSize(bytes, base?.maxBytes);
  const parsed = parseJws(bytes, base?.allowCompact ?? false);
  return parsed.signatures.map((sig, index) => {
    const o = typeof opts === 'function' ? opts(index, sig.header) : opts;
    try {
      return { index, protectedHeader: sig.header, verified: verifyOne(parsed, sig, o) };
    } catch (e) {
      if (!(e instanceof BrskiError)) throw e;
      return { index, protectedHeader: sig.header, error: e };
    }
  });
}
