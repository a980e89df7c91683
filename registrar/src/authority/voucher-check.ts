/**
 * Voucher acceptance before relaying (digest §2.1 e, §12 Registrar 6): the MASA's answer must
 * be a voucher for THIS pledge (serial, idevid-issuer, nonce) pinning THIS domain, and — when a
 * voucher anchor is configured for the manufacturer — signed by the MASA. Anything else is an
 * upstream fault (502): relaying it would only make the pledge fail later with less context.
 * COSE: the unprotected x5bag/x5chain is stripped before relaying (cBRSKI).
 */
import { timingSafeEqual, X509Certificate } from 'node:crypto';
import { BrskiError } from '@brski/shared/errors';
import type { VoucherFormat } from '@brski/shared/media';
import { inspectVoucherArtifact, verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { stripUnprotectedCertificates } from '@brski/shared/envelope/cose';
import { idevidIssuerEquals, spkiDer, spkiSha256 } from '@brski/shared/pki/identity';
import type { Voucher } from '@brski/shared/voucher/model';
import type { PledgeIdentity, RegistrarIdentity } from './identity.ts';
import type { VerifiedPvr } from './pvr.ts';

/**
 * How the pin matched ours: 'bytes' = identical certificate or key bytes; 'key' = a
 * pinned-domain-cert with other bytes (re-issued, or from the MASA's customer record) carrying one
 * of our public keys.
 */
export type PinMatch = 'bytes' | 'key';

export interface AcceptedVoucher {
  /** Bytes to hand to the pledge. */
  relay: Uint8Array;
  data: Voucher;
  /** Whether the MASA signature was verified against a configured anchor. */
  signatureVerified: boolean;
  pinMatch: PinMatch;
}

const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && timingSafeEqual(a, b);

function invalid(message: string, cause?: unknown): BrskiError {
  return new BrskiError('upstream-invalid', `MASA voucher rejected: ${message}`, cause === undefined ? {} : { cause });
}

export async function acceptVoucher(format: VoucherFormat, bytes: Uint8Array, pvr: VerifiedPvr, pledge: PledgeIdentity,
  registrar: RegistrarIdentity, opts: { at: Date; maxBytes: number }): Promise<AcceptedVoucher> {
  const anchors = pledge.manufacturer.voucherAnchors;
  let data: Voucher;
  try {
    const decodeOpts = { kind: 'voucher' as const, strict: false };
    data = anchors.length > 0
      ? (await verifyVoucherArtifact(format, bytes, { anchors, at: opts.at, maxBytes: opts.maxBytes, ...decodeOpts, role: 'voucher' })).decoded.data
      : inspectVoucherArtifact(format, bytes, decodeOpts).decoded.data;
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : String(err), err);
  }
  if (data.serialNumber !== pledge.serial) throw invalid(`serial-number ${JSON.stringify(data.serialNumber)} is not the pledge's ${JSON.stringify(pledge.serial)}`);
  if (data.idevidIssuer && !idevidIssuerEquals(data.idevidIssuer, pledge.idevidIssuer)) throw invalid('idevid-issuer does not match the IDevID');
  if (pvr.data.nonce) {
    if (!data.nonce || !eq(data.nonce, pvr.data.nonce)) throw invalid('nonce does not echo the voucher-request nonce');
  }
  const pinMatch = checkPin(data, registrar);
  const relay = format === 'cose' ? stripUnprotectedCertificates(bytes) : bytes;
  return { relay, data, signatureVerified: anchors.length > 0, pinMatch };
}

/** The pin must be our domain: a certificate of our TLS / CA chain (matched by public key), or our TLS key. */
export function checkPin(v: Voucher, registrar: RegistrarIdentity): PinMatch {
  if (v.pinnedDomainCert) {
    const pinned = v.pinnedDomainCert;
    if (registrar.pinnable.some((c) => eq(new Uint8Array(c.raw), pinned))) return 'bytes';
    // The pledge anchors on the pinned certificate's public key only (digest §2.1 f.7), so a
    // certificate with one of our keys pins us whatever its other bytes.
    let key: Uint8Array;
    try {
      key = spkiDer(new X509Certificate(pinned));
    } catch (err) {
      throw invalid('pinned-domain-cert is not an X.509 certificate', err);
    }
    if (registrar.pinnable.some((c) => eq(spkiDer(c), key))) return 'key';
    throw invalid('pinned-domain-cert is not a certificate of this domain');
  }
  if (v.pinnedDomainPubk) {
    if (!registrar.tlsCertificates.some((c) => eq(spkiDer(c), v.pinnedDomainPubk!))) throw invalid('pinned-domain-pubk is not this registrar\'s key');
    return 'bytes';
  }
  if (v.pinnedDomainPubkSha256) {
    if (!registrar.tlsCertificates.some((c) => eq(spkiSha256(c), v.pinnedDomainPubkSha256!))) throw invalid('pinned-domain-pubk-sha256 is not this registrar\'s key');
    return 'bytes';
  }
  throw invalid('voucher carries no pin');
}
