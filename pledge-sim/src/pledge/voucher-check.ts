/**
 * The pledge's side of the voucher (digest §2.1(b), (f); §12 pledge 1–5):
 * building the PVR, verifying the voucher against the manufacturer anchor and its content
 * against this attempt, and resolving the provisional TLS connection through the pin.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { signVoucherArtifact, verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import type { VoucherFormat } from '@brski/shared/media';
import { verifyChain } from '@brski/shared/pki/chain';
import { idevidIssuerEquals, idevidIssuerOf, spkiDer } from '@brski/shared/pki/identity';
import type { Assertion, Voucher, VoucherRequest } from '@brski/shared/voucher/model';
import { validateVoucherData } from '@brski/shared/voucher/validate';
import { PledgeFailure, voucherFailureFrom } from './errors.ts';

export type ProximityLeaf = 'cert' | 'pubk' | 'pubk-sha256';

export interface PvrInput {
  format: VoucherFormat;
  serial: string;
  registrarCert: X509Certificate;
  proximity?: ProximityLeaf;
  /** 8..32 bytes; default 16 fresh random bytes. */
  nonce?: Uint8Array;
  now?: Date;
}

export interface BuiltPvr {
  bytes: Uint8Array;
  nonce: Uint8Array;
  data: VoucherRequest;
}

/** A fresh nonce per attempt (never reused: each attempt and each registrar gets its own). */
export function freshNonce(length = 16): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

export async function buildPvr(input: PvrInput, signer: Signer): Promise<BuiltPvr> {
  const nonce = input.nonce ?? freshNonce();
  const data: VoucherRequest = {
    assertion: 'proximity',
    serialNumber: input.serial,
    nonce,
    createdOn: (input.now ?? new Date()).toISOString(),
  };
  const proximity = input.proximity ?? 'cert';
  if (proximity === 'cert') data.proximityRegistrarCert = new Uint8Array(input.registrarCert.raw);
  else if (proximity === 'pubk') data.proximityRegistrarPubk = spkiDer(input.registrarCert);
  else data.proximityRegistrarPubkSha256 = new Uint8Array(createHash('sha256').update(spkiDer(input.registrarCert)).digest());
  const bytes = await signVoucherArtifact(input.format, 'voucher-request', data, signer);
  return { bytes, nonce, data };
}

export type Pin =
  | { kind: 'cert'; cert: X509Certificate }
  | { kind: 'pubk'; spki: Uint8Array }
  | { kind: 'pubk-sha256'; hash: Uint8Array };

export interface VoucherExpectations {
  format: VoucherFormat;
  serial: string;
  idevid: X509Certificate;
  nonce: Uint8Array;
  /**
   * Voucher trust anchors, used for nothing else (digest §8.6): the MASA signing certificate, or a CA
   * that signs only MASA signers. Not the manufacturer root that also issues IDevIDs, TLS and station
   * certificates: any key under it could then sign a voucher.
   */
  trust: readonly X509Certificate[];
  acceptAssertions: readonly Assertion[];
  allowNonceless?: boolean;
  /** Which pin kind to prefer (the one matching the proximity leaf sent). */
  proximity?: ProximityLeaf;
  now?: Date;
}

export interface CheckedVoucher {
  voucher: Voucher;
  pin: Pin;
  signer: X509Certificate;
}

/** Tolerated difference between the MASA's clock and ours for created-on. */
const CLOCK_SKEW_MS = 5 * 60_000;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/**
 * Signature verification against the pledge's voucher trust anchors (digest §8.6: anchors used only
 * for vouchers, e.g. the pinned MASA signing certificate). When the envelope names no usable signer
 * certificate (COSE after the registrar stripped x5bag, §6.3; CMS without `certificates`, which is
 * only a SHOULD, §6.1; JWS without x5c) the signer is a pre-stored certificate: tried end-entities first.
 */
async function verifySignature(bytes: Uint8Array, exp: VoucherExpectations) {
  // No `role` here: the named content checks run first, the remaining YANG rules after them.
  const base = { anchors: exp.trust, at: exp.now ?? new Date(), strict: false, kind: 'voucher' as const };
  let lastError: unknown;
  try {
    return await verifyVoucherArtifact(exp.format, bytes, base);
  } catch (e) { lastError = e; } // e.g. no signer certificate in the envelope: try the pre-stored ones
  const candidates = [...exp.trust].sort((a, b) => Number(a.ca) - Number(b.ca));
  for (const signerCertificate of candidates) {
    try {
      return await verifyVoucherArtifact(exp.format, bytes, { ...base, signerCertificate, extraCertificates: exp.trust });
    } catch (e) {
      // Past the signature (payload errors): this was the signer, report what is wrong with the content.
      if (voucherFailureFrom(e).reason !== 'voucher-signature') throw e;
      lastError = e;
    }
  }
  throw lastError;
}

/** All MUST checks of digest §2.1(f) 1–5; throws a PledgeFailure naming the first that fails. */
export async function checkVoucher(bytes: Uint8Array, exp: VoucherExpectations): Promise<CheckedVoucher> {
  let verified: Awaited<ReturnType<typeof verifyVoucherArtifact>>;
  try {
    verified = await verifySignature(bytes, exp);
  } catch (e) {
    throw voucherFailureFrom(e);
  }
  const v = verified.decoded.data as Voucher;
  if (v.serialNumber !== exp.serial) {
    throw new PledgeFailure('voucher-serial-mismatch', `voucher is for serial ${JSON.stringify(v.serialNumber)}, not ${JSON.stringify(exp.serial)}`);
  }
  if (v.idevidIssuer !== undefined && !idevidIssuerEquals(v.idevidIssuer, idevidIssuerOf(exp.idevid))) {
    throw new PledgeFailure('voucher-idevid-issuer-mismatch', 'idevid-issuer does not name the issuer of this IDevID');
  }
  if (v.nonce === undefined) {
    if (!exp.allowNonceless) throw new PledgeFailure('voucher-nonce-missing', 'nonceless voucher refused by policy');
  } else {
    // JSON formats: compare the exact string sent too (digest §11 #18), not only the bytes.
    const sentText = Buffer.from(exp.nonce).toString('base64');
    const textOk = verified.decoded.nonceText === undefined || verified.decoded.nonceText === sentText;
    if (!equalBytes(v.nonce, exp.nonce) || !textOk) throw new PledgeFailure('voucher-nonce-mismatch', 'voucher nonce is not the nonce of this attempt');
  }
  if (v.assertion === undefined || !exp.acceptAssertions.includes(v.assertion)) {
    throw new PledgeFailure('voucher-assertion', `assertion ${v.assertion ?? '(absent)'} is not acceptable`);
  }
  const now = exp.now ?? new Date();
  // Time fields, with the host clock as the trusted clock (digest §12 Pledge 11), allowing some skew.
  if (v.createdOn !== undefined) {
    const t = Date.parse(v.createdOn);
    if (Number.isFinite(t) && t > now.getTime() + CLOCK_SKEW_MS) throw new PledgeFailure('voucher-not-yet-valid', `voucher created-on ${v.createdOn} is in the future`);
  }
  if (v.expiresOn !== undefined) {
    const t = Date.parse(v.expiresOn);
    if (!Number.isFinite(t)) throw new PledgeFailure('voucher-malformed', `expires-on ${JSON.stringify(v.expiresOn)} is not a date`);
    if (t < now.getTime()) throw new PledgeFailure('voucher-expired', `voucher expired at ${v.expiresOn}`);
  }
  // RFC 8366 §5.3: true means the pledge MUST check the domain certificate's revocation status.
  // This pledge has no revocation source before it trusts the domain, so it fails closed rather
  // than skip a MUST.
  if (v.domainCertRevocationChecks === true) {
    throw new PledgeFailure('voucher-revocation-unchecked', 'the voucher requires domain-cert-revocation-checks, which this pledge cannot perform');
  }
  const pin = selectPin(v, exp.proximity ?? 'cert');
  try {
    validateVoucherData(v, 'voucher');
  } catch (e) {
    throw voucherFailureFrom(e);
  }
  return { voucher: v, pin, signer: verified.envelope.signer };
}

/**
 * Pinned certificates by SHA-256 of their DER (bounded): every pledge of a fleet is pinned to the
 * same domain certificate, and constructing an X509Certificate costs ~0.1 ms (OpenSSL 3 decoders).
 * X509Certificate objects are immutable, so sharing one is safe.
 */
const pinCache = new Map<string, X509Certificate>();
const PIN_CACHE_MAX = 64;

function pinnedCertificate(der: Uint8Array): X509Certificate {
  const key = createHash('sha256').update(der).digest('hex');
  let cert = pinCache.get(key);
  if (!cert) {
    cert = new X509Certificate(der);
    if (pinCache.size >= PIN_CACHE_MAX) pinCache.delete(pinCache.keys().next().value!);
    pinCache.set(key, cert);
  }
  return cert;
}

/** The pin to use: the kind matching our proximity leaf first, then sha256, pubk, cert (§5.1). */
export function selectPin(v: Voucher, preferred: ProximityLeaf): Pin {
  const pins: Pin[] = [];
  const order: ProximityLeaf[] = [preferred, ...(['pubk-sha256', 'pubk', 'cert'] as const).filter((k) => k !== preferred)];
  for (const kind of order) {
    if (kind === 'cert' && v.pinnedDomainCert) {
      let cert: X509Certificate;
      try { cert = pinnedCertificate(v.pinnedDomainCert); } catch (e) {
        throw new PledgeFailure('voucher-malformed', 'pinned-domain-cert is not a certificate', { cause: e });
      }
      pins.push({ kind, cert });
    }
    if (kind === 'pubk' && v.pinnedDomainPubk) pins.push({ kind, spki: v.pinnedDomainPubk });
    if (kind === 'pubk-sha256' && v.pinnedDomainPubkSha256) pins.push({ kind, hash: v.pinnedDomainPubkSha256 });
  }
  const pin = pins[0];
  if (!pin) throw new PledgeFailure('voucher-no-pin', 'voucher pins no domain certificate or key');
  return pin;
}

/**
 * Provisional TLS resolution (§2.1(f) 7): the pinned certificate is the ONLY trust anchor for a
 * PKIX validation of the chain the registrar presented; RPK pins must match the leaf key.
 */
export function validateRegistrarChain(chain: readonly X509Certificate[], pin: Pin, now = new Date()): void {
  const leaf = chain[0];
  if (!leaf) throw new PledgeFailure('registrar-pin-mismatch', 'no registrar certificate recorded');
  // Anchors are not time-checked (RFC 5280), so a pin that is the registrar certificate itself
  // would let an expired one through: the leaf's own validity is checked here.
  if (Date.parse(leaf.validFrom) > now.getTime() || Date.parse(leaf.validTo) < now.getTime()) {
    throw new PledgeFailure('registrar-pin-mismatch', `registrar certificate is not valid now (${leaf.validFrom} – ${leaf.validTo})`);
  }
  if (pin.kind === 'cert') {
    try {
      verifyChain(leaf, chain.slice(1), [pin.cert], now);
    } catch (e) {
      throw new PledgeFailure('registrar-pin-mismatch', `registrar chain does not validate against the pinned domain certificate: ${(e as Error).message}`, { cause: e });
    }
    return;
  }
  const spki = spkiDer(leaf);
  const ok = pin.kind === 'pubk'
    ? equalBytes(spki, pin.spki)
    : equalBytes(createHash('sha256').update(spki).digest(), pin.hash);
  if (!ok) throw new PledgeFailure('registrar-pin-mismatch', `registrar key does not match pinned-domain-${pin.kind}`);
}
