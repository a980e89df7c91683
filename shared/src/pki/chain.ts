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
 * - RFC 5280 §6.1.4 on a completed path: pathLenConstraint of every CA in it (anchor included, as
 *   OpenSSL does), name constraints of every CA over the certificates below it (name-constraints.ts),
 *   and no critical extension we do not process in a non-anchor certificate (§4.2). A path that
 *   fails these is not taken; the search goes on to the next candidate.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { ChainError } from '../errors.ts';
import { certificateInfo } from './identity.ts';
import { certificateNames, nameConstraintViolation, NAME_CONSTRAINTS_OID, parseNameConstraints, type CertificateNames, type NameConstraints } from './name-constraints.ts';

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

interface Failure { expired: X509Certificate | undefined; revoked: X509Certificate | undefined; constraint: string | undefined }

/**
 * Extensions whose meaning this validator honours (or which carry no constraint on the path):
 * SKI, keyUsage (keyCertSign via checkIssued), SAN, IAN, basicConstraints, nameConstraints, CRL
 * distribution points, certificatePolicies (any policy is acceptable: no explicit policy is
 * required), AKI, EKU, freshestCRL, AIA, SIA, and the MASA URL. Any other critical extension
 * (policyConstraints, inhibitAnyPolicy, policyMappings, private ones) makes a certificate unusable.
 */
const PROCESSED_EXTENSIONS = new Set(['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.18', '2.5.29.19', NAME_CONSTRAINTS_OID, '2.5.29.31',
  '2.5.29.32', '2.5.29.35', '2.5.29.37', '2.5.29.46', '1.3.6.1.5.5.7.1.1', '1.3.6.1.5.5.7.1.11', '1.3.6.1.5.5.7.1.32']);

interface PathFacts { unprocessedCritical?: string; pathLength?: number; selfIssued: boolean; nameConstraints?: NameConstraints; malformed?: string }
const factsCache = new WeakMap<X509Certificate, PathFacts>();
const namesCache = new WeakMap<X509Certificate, CertificateNames>();

function pathFacts(cert: X509Certificate): PathFacts {
  let f = factsCache.get(cert);
  if (f === undefined) {
    try {
      const info = certificateInfo(cert);
      f = { selfIssued: Buffer.from(info.subjectDer).equals(Buffer.from(info.issuerDer)) };
      for (const [oid, ext] of info.extensions) if (ext.critical && !PROCESSED_EXTENSIONS.has(oid)) { f.unprocessedCritical = oid; break; }
      if (info.pathLength !== undefined) f.pathLength = info.pathLength;
      const nc = info.extensions.get(NAME_CONSTRAINTS_OID);
      if (nc) f.nameConstraints = parseNameConstraints(nc.value);
    } catch (err) {
      f = { selfIssued: false, malformed: (err as Error).message };
    }
    factsCache.set(cert, f);
  }
  return f;
}

function namesOf(cert: X509Certificate): CertificateNames {
  let n = namesCache.get(cert);
  if (n === undefined) {
    const info = certificateInfo(cert);
    n = certificateNames(info.subjectDer, info.extensions.get('2.5.29.17')?.value);
    namesCache.set(cert, n);
  }
  return n;
}

/** RFC 5280 §6.1.4 checks on a complete path [leaf, …, anchor]: why it is unusable, or undefined. */
function pathProblem(path: readonly X509Certificate[]): string | undefined {
  const anchorAt = path.length - 1;
  for (let i = 0; i < path.length; i++) {
    const f = pathFacts(path[i]!);
    if (f.malformed !== undefined) return `${oneLine(path[i]!.subject)}: ${f.malformed}`;
    if (i < anchorAt && f.unprocessedCritical) return `${oneLine(path[i]!.subject)} has an unsupported critical extension ${f.unprocessedCritical}`;
    if (i === 0) continue;
    if (f.pathLength !== undefined) {
      let below = 0; // intermediates between this CA and the leaf; self-issued ones do not count (§6.1.4 (l))
      for (let j = 1; j < i; j++) if (!pathFacts(path[j]!).selfIssued) below++;
      if (below > f.pathLength) return `${oneLine(path[i]!.subject)} allows ${f.pathLength} intermediate CA(s) below it, the path has ${below}`;
    }
    if (f.nameConstraints) {
      for (let j = 0; j < i; j++) {
        let why: string | undefined;
        try { why = nameConstraintViolation(f.nameConstraints, namesOf(path[j]!), j === 0 || !pathFacts(path[j]!).selfIssued); } catch (err) { why = (err as Error).message; }
        if (why) return `${oneLine(path[j]!.subject)}: ${why} (name constraints of ${oneLine(path[i]!.subject)})`;
      }
    }
  }
  return undefined;
}

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

  const failure: Failure = { expired: undefined, revoked: undefined, constraint: undefined };
  const path = search([leaf], pool, anchors, at, maxDepth, opts, failure);
  if (!path) {
    if (failure.revoked) throw new ChainError('certificate-revoked', `certificate revoked: ${oneLine(failure.revoked.subject)}`);
    if (failure.constraint) throw new ChainError('untrusted-chain', `certificate path refused: ${failure.constraint}`);
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
  const done = (candidate: X509Certificate[]): X509Certificate[] | undefined => {
    const problem = pathProblem(candidate);
    if (problem === undefined) return candidate;
    failure.constraint ??= problem;
    return undefined;
  };
  // 1. The current certificate is itself a trust anchor (by bytes or subject + key).
  for (const a of anchors) {
    if (matchesAnchor(current, a)) { const p = done([...path.slice(0, -1), a]); if (p) return p; }
  }
  // Anything that is not an anchor must be valid now and not revoked.
  if (!isValidAt(current, at)) { failure.expired ??= current; return undefined; }
  if (opts.checkRevoked?.(current)) { failure.revoked ??= current; return undefined; }
  if (path.length >= maxDepth) return undefined;
  // 2. Issued directly by an anchor.
  for (const a of anchors) {
    if (a.ca && issuedBy(current, a)) { const p = done([...path, a]); if (p) return p; }
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
