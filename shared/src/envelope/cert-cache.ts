/**
 * The one cache of parsed certificates: DER bytes → node:crypto X509Certificate.
 *
 * Why: every voucher-request carries the same few certificates (registrar, domain CA, IDevID,
 * MASA signer), and `new X509Certificate(der)` (OpenSSL d2i + SPKI decode) was the largest single
 * cost of verifying an envelope. Handing back the same object for the same bytes also lets the
 * per-object caches downstream (chain.ts issuer links and validity, identity.ts parsed fields)
 * hit instead of starting cold on every request.
 *
 * Safety: the key is SHA-256 over the complete DER, and a hit is only returned after comparing
 * the full bytes, so a different (or tampered) certificate can never come back. Only parsing
 * is cached — nothing about trust: validity at time T, revocation, chain and signatures are
 * still checked by the callers on every call. A certificate that fails to parse is not cached.
 * X509Certificate is immutable, so sharing one object between requests is safe.
 */
import { createHash, X509Certificate } from 'node:crypto';

/** Bounded: a MASA sees a few certificates per device; 4096 covers a busy fleet without growing without limit. */
const MAX_ENTRIES = 4096;
const cache = new Map<string, X509Certificate>();
let hits = 0;
let misses = 0;

/**
 * Parses DER into an X509Certificate (cached). Throws whatever node:crypto throws for bad
 * input, including a SubjectPublicKeyInfo OpenSSL cannot decode (checked eagerly, since
 * OpenSSL decodes the key lazily).
 */
export function certificateFromDer(der: Uint8Array): X509Certificate {
  const bytes = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const key = createHash('sha256').update(bytes).digest('base64');
  const hit = cache.get(key);
  if (hit !== undefined && hit.raw.equals(bytes)) {
    // Map keeps insertion order: re-inserting makes it the most recently used (cheap LRU).
    cache.delete(key);
    cache.set(key, hit);
    hits++;
    return hit;
  }
  misses++;
  const cert = new X509Certificate(bytes);
  void cert.publicKey;
  cache.set(key, cert);
  if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  return cert;
}

/**
 * The same cache in front of a base64 text (JWS `x5c`): the exact text seen before maps to the
 * certificate parsed from it, skipping the alphabet check, the decode and the SHA-256 of the DER
 * (~10 µs per certificate, 3–4 per voucher-request). Map keys compare the whole string, so only
 * the identical text hits; anything new goes through `check` and certificateFromDer.
 */
const textCache = new Map<string, X509Certificate>();

export function certificateFromBase64(text: string, check: (text: string) => void): X509Certificate {
  const hit = textCache.get(text);
  if (hit !== undefined) return hit;
  check(text);
  const cert = certificateFromDer(Buffer.from(text, 'base64'));
  textCache.set(text, cert);
  if (textCache.size > MAX_ENTRIES) textCache.delete(textCache.keys().next().value!);
  return cert;
}

/** Counters for tests and benchmarks. */
export function certificateCacheStats(): { size: number; hits: number; misses: number; max: number } {
  return { size: cache.size, hits, misses, max: MAX_ENTRIES };
}

/** Forget every parsed certificate (tests; not needed for correctness). */
export function clearCertificateCache(): void {
  cache.clear();
  textCache.clear();
  hits = 0;
  misses = 0;
}
