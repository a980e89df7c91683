/**
 * Types and helpers shared by the three envelope formats (CMS, JWS, COSE).
 * Envelopes know formats, not policy: they prove "these bytes were signed by this certificate,
 * which chains to one of your anchors at time T" and hand back the payload.
 */
import type { X509Certificate } from 'node:crypto';
import { MalformedError, SizeLimitError } from '../errors.ts';
import type { VoucherFormat } from '../media.ts';
import { verifyChain, type ChainOptions } from '../pki/chain.ts';
import { certificateFromDer } from './cert-cache.ts';

export interface VerifyOptions {
  /** Trust anchors; an embedded certificate is never trusted by itself. */
  anchors: readonly X509Certificate[];
  /** Validation time (default now). */
  at?: Date;
  /** Signer when the envelope carries none (COSE PVR: the (D)TLS client certificate). */
  signerCertificate?: X509Certificate;
  /** Intermediates supplied out of band (COSE x5bag of an RVR etc.). */
  extraCertificates?: readonly X509Certificate[];
  /**
   * COSE only: leave x5bag/x5chain unread and unused (digest §6.3: a registrar MUST ignore the
   * certificates in a PVR; the signer and its chain come from the DTLS/TLS session).
   */
  ignoreEmbedded?: boolean;
  /** Default 64 KiB. */
  maxBytes?: number;
  /** Forwarded to the chain check (e.g. id-kp-cmcRA for RVR signers). */
  requireEku?: ChainOptions['requireEku'];
  checkRevoked?: ChainOptions['checkRevoked'];
}

export interface VerifiedEnvelope {
  format: VoucherFormat;
  /** The signed content (JSON bytes for cms/jws, CBOR for cose). */
  payload: Uint8Array;
  /** End-entity that signed. */
  signer: X509Certificate;
  /** signer … anchor, validated at `at`. */
  chain: X509Certificate[];
  /** Every certificate the envelope carried. */
  embedded: X509Certificate[];
  warnings: string[];
}

/** Parse only — NO verification. */
export interface InspectedEnvelope {
  format: VoucherFormat;
  payload: Uint8Array;
  embedded: X509Certificate[];
}

export const DEFAULT_MAX_BYTES = 64 * 1024;

/** Size check first, before any parser sees the bytes. */
export function checkSize(bytes: Uint8Array, maxBytes: number | undefined): void {
  const limit = maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length > limit) throw new SizeLimitError(limit, bytes.length);
  if (bytes.length === 0) throw new MalformedError('empty envelope');
}

/**
 * Parses a DER certificate; a broken one is a malformed envelope, not a crash. Parsed objects
 * are shared through cert-cache.ts (keyed by the full DER), so the same bytes parse once.
 */
export function parseCertificate(der: Uint8Array, where: string): X509Certificate {
  try {
    // certificateFromDer also decodes the SubjectPublicKeyInfo eagerly: a corrupt key fails
    // here, as bad input, not later inside a signature check.
    return certificateFromDer(der);
  } catch (e) {
    throw new MalformedError(`${where}: not a valid X.509 certificate`, { cause: e });
  }
}

/** Validates the signer's chain with the envelope's embedded certificates plus out-of-band extras. */
export function validateSignerChain(signer: X509Certificate, embedded: readonly X509Certificate[],
  opts: VerifyOptions): X509Certificate[] {
  const pool = [...embedded, ...(opts.extraCertificates ?? [])];
  const chainOpts: ChainOptions = {};
  if (opts.requireEku !== undefined) chainOpts.requireEku = opts.requireEku;
  if (opts.checkRevoked !== undefined) chainOpts.checkRevoked = opts.checkRevoked;
  return verifyChain(signer, pool, opts.anchors, opts.at ?? new Date(), chainOpts);
}
