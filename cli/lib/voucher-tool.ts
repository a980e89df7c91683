/**
 * Logic behind `brski voucher sign|verify`, kept out of the command file so tests call it directly.
 * Signing takes an RFC 7951 JSON voucher or voucher-request, checks it against the message rules
 * and signs it in the requested envelope; verification detects the envelope, verifies signature
 * and chain against the given anchors, then decodes and validates the payload.
 */
import type { X509Certificate } from 'node:crypto';
import { BrskiError, MalformedError } from '../../shared/src/errors.ts';
import type { Signer } from '../../shared/src/crypto/signer.ts';
import type { VoucherFormat } from '../../shared/src/media.ts';
import { detectFormat } from '../../shared/src/envelope/index.ts';
import { signVoucherArtifact, verifyVoucherArtifact } from '../../shared/src/envelope/artifact.ts';
import { decodeVoucherJson, encodeVoucherJson } from '../../shared/src/voucher/json.ts';
import { validateVoucherData } from '../../shared/src/voucher/validate.ts';
import type { DecodedVoucher, MessageRole, VoucherRequest } from '../../shared/src/voucher/model.ts';

/** Which §5.3 rule set applies: vouchers are vouchers; a request with a prior request inside is an RVR. */
export function roleOf(decoded: DecodedVoucher<VoucherRequest>): MessageRole {
  if (decoded.kind === 'voucher') return 'voucher';
  return decoded.data.priorSignedVoucherRequest !== undefined ? 'rvr' : 'pvr';
}

export interface SignVoucherOptions {
  format: VoucherFormat;
  signer: Signer;
  /** Explicit role; default derived from the payload (roleOf). */
  role?: MessageRole;
}

export async function signVoucherPayload(payloadJson: Uint8Array, o: SignVoucherOptions): Promise<Uint8Array> {
  const decoded = decodeVoucherJson<VoucherRequest>(payloadJson, { strict: true });
  const role = o.role ?? roleOf(decoded);
  validateVoucherData(decoded.data, role, { flavour: 'emit' });
  const [leaf, ...chain] = o.signer.certificates;
  if (!leaf) throw new TypeError('signer has no certificate');
  return signVoucherArtifact(o.format, decoded.kind, decoded.data, o.signer, {
    ...(decoded.nonceText === undefined ? {} : { json: { nonceText: decoded.nonceText } }),
    // COSE carries no certificate by default; put signer + chain in the unprotected x5bag so a
    // verifier holding only the anchor can find the signer (digest §6.3).
    ...(o.format === 'cose' ? { unprotectedX5bag: [leaf, ...chain] } : {}),
  });
}

export interface VerifyVoucherOptions {
  anchors: readonly X509Certificate[];
  at?: Date;
  /** Signer certificate when the artifact carries none (COSE PVR). */
  signerCertificate?: X509Certificate;
  extraCertificates?: readonly X509Certificate[];
  format?: VoucherFormat;
  /** Reject unknown members (our own services' rule); default lenient (pledge rule). */
  strict?: boolean;
}

export interface VoucherReport {
  valid: true;
  format: VoucherFormat;
  kind: DecodedVoucher['kind'];
  role: MessageRole;
  signer: string;
  chain: string[];
  warnings: string[];
  unknown: string[];
  /** RFC 7951 JSON of the payload (COSE payloads are re-encoded from CBOR). */
  payload: unknown;
}

export async function verifyVoucherBytes(bytes: Uint8Array, o: VerifyVoucherOptions): Promise<VoucherReport> {
  const format = o.format ?? detectFormat(bytes);
  if (!format) throw new MalformedError('not a CMS, JWS or COSE voucher artifact');
  // COSE without a signer certificate: verifyCose also tries the anchors themselves (cBRSKI MASA-CA-signed vouchers).
  const { envelope, decoded } = await verifyVoucherArtifact<VoucherRequest>(format, bytes, {
    anchors: o.anchors,
    strict: o.strict ?? false,
    ...(o.at ? { at: o.at } : {}),
    ...(o.signerCertificate ? { signerCertificate: o.signerCertificate } : {}),
    ...(o.extraCertificates ? { extraCertificates: o.extraCertificates } : {}),
  });
  const role = roleOf(decoded);
  validateVoucherData(decoded.data, role);
  const json = format === 'cose' ? encodeVoucherJson(decoded.kind, decoded.data) : envelope.payload;
  return {
    valid: true, format, kind: decoded.kind, role,
    signer: envelope.signer.subject.replace(/\n/g, ', '),
    chain: envelope.chain.map((c) => c.subject.replace(/\n/g, ', ')),
    warnings: envelope.warnings, unknown: decoded.unknown,
    payload: JSON.parse(Buffer.from(json).toString('utf8')) as unknown,
  };
}

/** One line for a failed verification: the code and message of a BrskiError, else the message. */
export function reasonOf(e: unknown): string {
  if (e instanceof BrskiError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
