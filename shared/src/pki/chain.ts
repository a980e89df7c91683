/**
 * Certificate path validation on the hot path: leaf → (intermediates) → trust anchor, with
 * node:crypto's X509Certificate (OpenSSL) doing the signature and issuer-name/AKI checks.
 * pkijs' own chain engine is avoided here: it re-parses every certificate and is slow.
 *
 * Semantics (RFC 5280 §6.1 reduced to what BRSKI needs):
 * - A trust anchor is a (subject, public key) pair. An anchor matches a path certificate when
 *   the bytes are equal OR subject and public key are equal (vendors re-issue CA certs with the
 *   same key, e.g. the cBRSKI vectors). The signer itself may be an anchor.
 * - Trust anchors are not time-checked (RFC 5280 §6.1.1(d) treats the anchor as name + key);
 *   every other certificate in the path must be valid at `at`.
 * - Every issuer below the anchor and the anchor itself (when it issued something) must have
 *   the CA flag; key usage keyCertSign is enforced by OpenSSL's checkIssued.
 * - Path building is a bounded depth-first search, so a crafted bag of certificates cannot make
 *   it loop or explode.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { ChainError } from '../errors.ts';

export interface ChainOptions {
  /** EKU OID the leaf must list explicitly (e.g. id-kp-cmcRA for an RVR signer). */
  requireEku?: string;
  /** Returns true when the certificate is revoked; applied to every non-anchor certificate in the path. */
  checkRevoked?: (cert: X509Certificate) => boolean;
  /** Maximum number of certificates in a path, anchor included (default 8). */
  maxDepth?: number;
}

const DEFAULT_MAX_DEPTH = 8;
/** A larger bag than this is refused instead of searched (defence against path-building DoS). */
const MAX_POOL = 64;

// ---- small per-certificate caches (immutable facts) -------------------------------------------

const spkiCache = new WeakMap<X509Certificate, string>();
const validityCache = new WeakMap<X509Certificate, { from: number; to: number }>();

function spkiHash(cert: X509Certificate): string {
  let h = spkiCache.get(cert);
  if (h === undefined) {
    try {
      h = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    } catch {
      h = `undecodable-key:${cert.fingerprint256}`; // a key OpenSSL cannot decode matches nothing
    }
    spkiCache.set(cert, h);
  }
  return h;
}

function validity(cert: X509Certificate): { from: number; to: number } {
  let v = validityCache.get(cert);
  if (v === undefined) {
    v = { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
    validityCache.set(cert, v);
  }
  return v;
}

export function isValidAt(cert: X509Certificate, at: Date): boolean {
  const { from, to } = validity(cert);
  const t = at.getTime();
  return Number.isFinite(from) && Number.isFinite(to) && t >= from && t <= to;
}

/** True when `cert` is `anchor` by bytes, or carries the same subject and public key. */
export function matchesAnchor(cert: X509Certificate, anchor: X509Certificate): boolean {
  if (cert === anchor || cert.fingerprint256 === anchor.fingerprint256) return true;
  return cert.subject === anchor.subject && spkiHash(cert) === spkiHash(anchor);
}

// ---- issuer-link cache: (child fingerprint, issuer fingerprint) → verified -------------------

const LINK_CACHE_MAX = 4096;
const linkCache = new Map<string, true>();

/** `issuer` issued `child`: names/AKI/keyUsage (checkIssued) and the signature. Cached when true. */
function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  const key = `${child.fingerprint256}|${issuer.fingerprint256}`;
  if (linkCache.has(key)) {
    // refresh recency (Map keeps insertion order → cheap LRU)
    linkCache.delete(key); linkCache.set(key, true);
    return true;
  }
  let ok = false;
  try {
    ok = child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    ok = false; // unsupported key types etc. are "not issued by"
  }
  if (ok) {
    linkCache.set(key, true);
    if (linkCache.size > LINK_CACHE_MAX) linkCache.delete(linkCache.keys().next().value!);
  }
  return ok;
}

/** For tests and key rotation: forget every cached link. */
export function clearChainCache(): void { linkCache.clear(); }

// ---- path building ----------------------------------------------------------------------------

interface Failure { expired: X509Certificate | undefined; revoked: X509Certificate | undefined }

/**
 * Validates `leaf` up to one of `anchors` at time `at` and returns the path
 * [leaf, …, anchor] (the anchor object from `anchors`, not an embedded copy).
 * Throws ChainError: 'untrusted-chain', 'certificate-expired', 'certificate-revoked', 'missing-eku'.
 */
export function verifyChain(leaf: X509Certificate, intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[], at: Date = new Date(), opts: ChainOptions = {}): X509Certificate[] {
  if (anchors.length === 0) throw new ChainError('untrusted-chain', 'no trust anchors configured');
  if (intermediates.length + anchors.length > MAX_POOL) {
    throw new ChainError('untrusted-chain', `too many certificates to build a path from (${intermediates.length + anchors.length} > ${MAX_POOL})`);
  }
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  // Drop duplicates and the leaf itself from the intermediate pool.
  const seen = new Set<string>([leaf.fingerprint256]);
  const pool: X509Certificate[] = [];
  for (const c of intermediates) if (!seen.has(c.fingerprint256)) { seen.add(c.fingerprint256); pool.push(c); }

  const failure: Failure = { expired: undefined, revoked: undefined };
  const path = search([leaf], pool, anchors, at, maxDepth, opts, failure);
  if (!path) {
    if (failure.revoked) throw new ChainError('certificate-revoked', `certificate revoked: ${oneLine(failure.revoked.subject)}`);
    if (failure.expired) {
      throw new ChainError('certificate-expired', `certificate not valid at ${at.toISOString()}: ${oneLine(failure.expired.subject)} `
        + `(valid ${validityText(failure.expired)})`);
    }
    throw new ChainError('untrusted-chain', `no path from ${oneLine(leaf.subject)} (issuer ${oneLine(leaf.issuer)}) to a trust anchor`);
  }
  if (opts.requireEku !== undefined) {
    const ekus = leaf.keyUsage; // node lists the extended key usage OIDs here (undefined when absent)
    if (!ekus || !ekus.includes(opts.requireEku)) {
      throw new ChainError('missing-eku', `signer ${oneLine(leaf.subject)} lacks extended key usage ${opts.requireEku}`);
    }
  }
  return path;
}

function search(path: X509Certificate[], pool: readonly X509Certificate[], anchors: readonly X509Certificate[],
  at: Date, maxDepth: number, opts: ChainOptions, failure: Failure): X509Certificate[] | undefined {
  const current = path[path.length - 1]!;
  // 1. The current certificate is itself a trust anchor (by bytes or subject + key).
  for (const a of anchors) {
    if (matchesAnchor(current, a)) return [...path.slice(0, -1), a];
  }
  // Anything that is not an anchor must be valid now and not revoked.
  if (!isValidAt(current, at)) { failure.expired ??= current; return undefined; }
  if (opts.checkRevoked?.(current)) { failure.revoked ??= current; return undefined; }
  if (path.length >= maxDepth) return undefined;
  // 2. Issued directly by an anchor.
  for (const a of anchors) {
    if (a.ca && issuedBy(current, a)) return [...path, a];
  }
  // 3. Issued by an intermediate from the pool (not already on the path).
  for (const c of pool) {
    if (path.includes(c) || !c.ca) continue;
    if (!issuedBy(current, c)) continue;
    const found = search([...path, c], pool, anchors, at, maxDepth, opts, failure);
    if (found) return found;
  }
  return undefined;
}

function oneLine(dn: string): string { return dn.replace(/\n/g, ', '); }
function validityText(cert: X509Certificate): string { return `${cert.validFrom} .. ${cert.validTo}`; }
