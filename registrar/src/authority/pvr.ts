/**
 * Pledge voucher-request checks (digest §2.1 c, §12 Registrar 2–3):
 *  - the PVR is signed by the key of the TLS client certificate (COSE PVRs carry no certificate:
 *    the TLS client certificate is the signer; CMS/JWS PVRs must embed that same key);
 *  - the proximity leaf names the certificate / key THIS registrar presented (401 otherwise);
 *  - serial-number equals the IDevID's subject serialNumber.
 */
import { timingSafeEqual, type X509Certificate } from 'node:crypto';
import { BrskiError } from '@brski/shared/errors';
import type { VoucherFormat } from '@brski/shared/media';
import { verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { spkiDer, spkiSha256 } from '@brski/shared/pki/identity';
import type { VoucherRequest } from '@brski/shared/voucher/model';
import type { PledgeIdentity, RegistrarIdentity } from './identity.ts';

export interface VerifiedPvr {
  format: VoucherFormat;
  bytes: Uint8Array;
  data: VoucherRequest;
  /** JSON formats: the nonce string exactly as sent (copied verbatim into the RVR). */
  nonceText?: string;
  unknown: string[];
  warnings: string[];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function verifyPvr(format: VoucherFormat, bytes: Uint8Array, pledge: PledgeIdentity, registrar: RegistrarIdentity,
  opts: { maxBytes: number }): Promise<VerifiedPvr> {
  const { envelope, decoded } = await verifyVoucherArtifact(format, bytes, {
    anchors: pledge.manufacturer.idevidAnchors,
    // Same time the IDevID chain was accepted at (honours the per-manufacturer expiry opt-out).
    at: pledge.validatedAt,
    signerCertificate: pledge.idevid,
    extraCertificates: pledge.presented.slice(1),
    ignoreEmbedded: true, // COSE x5bag in a PVR: ignored, never parsed (digest §6.3, §12 Registrar 13)
    maxBytes: opts.maxBytes,
    kind: 'voucher-request',
    strict: false,
    legacyNames: true,
    role: 'pvr',
  });
  // The envelope proved "signed by a certificate of this manufacturer"; BRSKI needs "signed by
  // the device on this TLS session" (cBRSKI/PRM make it explicit).
  if (!equalBytes(spkiDer(envelope.signer), spkiDer(pledge.idevid))) {
    throw new BrskiError('signer-mismatch', 'voucher-request is not signed by the key of the TLS client certificate');
  }
  const data = decoded.data as VoucherRequest;
  checkProximity(data, registrar.tlsCertificates);
  if (data.serialNumber !== pledge.serial) {
    throw new BrskiError('serial-mismatch', `voucher-request serial-number ${JSON.stringify(data.serialNumber)} differs from the IDevID serialNumber ${JSON.stringify(pledge.serial)}`);
  }
  return {
    format, bytes, data, unknown: decoded.unknown, warnings: envelope.warnings,
    ...(decoded.nonceText === undefined ? {} : { nonceText: decoded.nonceText }),
  };
}

/**
 * The PVR must name this registrar (digest §2.1 c.3; order pubk-sha256, pubk, cert per §5.2).
 * A mismatch means someone relayed the pledge to us from elsewhere: 401, connection closed by the route.
 */
export function checkProximity(data: VoucherRequest, ours: readonly X509Certificate[]): void {
  if (data.assertion !== undefined && data.assertion !== 'proximity') {
    throw new BrskiError('invalid-voucher', `voucher-request assertion ${data.assertion} is not supported (proximity expected)`);
  }
  const mismatch = (what: string) => new BrskiError('proximity-mismatch', `${what} in the voucher-request does not match this registrar`);
  if (data.proximityRegistrarPubkSha256) {
    if (!ours.some((c) => equalBytes(spkiSha256(c), data.proximityRegistrarPubkSha256!))) throw mismatch('proximity-registrar-pubk-sha256');
    return;
  }
  if (data.proximityRegistrarPubk) {
    if (!ours.some((c) => equalBytes(spkiDer(c), data.proximityRegistrarPubk!))) throw mismatch('proximity-registrar-pubk');
    return;
  }
  if (data.proximityRegistrarCert) {
    if (!ours.some((c) => equalBytes(new Uint8Array(c.raw), data.proximityRegistrarCert!))) throw mismatch('proximity-registrar-cert');
    return;
  }
  throw new BrskiError('invalid-voucher', 'voucher-request carries no proximity-registrar-cert / -pubk / -pubk-sha256');
}
