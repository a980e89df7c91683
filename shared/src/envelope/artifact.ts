/**
 * Voucher-level helpers joining the voucher codecs and the envelopes: JSON payloads for CMS and
 * JWS, YANG-CBOR for COSE. Verification order is envelope first (signature + chain), then
 * decoding and the message rules, so unauthenticated bytes never reach the voucher parser
 * through verifyVoucherArtifact.
 */
import type { Signer } from '../crypto/signer.ts';
import type { VoucherFormat } from '../media.ts';
import { decodeVoucherCbor, encodeVoucherCbor, type CborEncodeOptions } from '../voucher/cbor.ts';
import { decodeVoucherJson, encodeVoucherJson, type JsonEncodeOptions } from '../voucher/json.ts';
import type { DecodedVoucher, DecodeOptions, MessageRole, VoucherKind, VoucherLeaves, VoucherRequest } from '../voucher/model.ts';
import { validateVoucherData, type ValidateOptions } from '../voucher/validate.ts';
import {
  inspectEnvelope, signEnvelope, verifyEnvelope,
  type SignEnvelopeOptions, type VerifyEnvelopeOptions,
} from './index.ts';
import type { InspectedEnvelope, VerifiedEnvelope } from './types.ts';

export interface SignArtifactOptions extends SignEnvelopeOptions {
  /** JSON encoder options (cms/jws), e.g. the nonce text to echo verbatim. */
  json?: JsonEncodeOptions;
  /** CBOR encoder options (cose), e.g. `keys: 'names'`. */
  cbor?: CborEncodeOptions;
}

export type VerifyArtifactOptions = VerifyEnvelopeOptions & DecodeOptions & {
  /** When given, the decoded data must satisfy the message rules for this role (digest §5.3). */
  role?: MessageRole;
  validate?: ValidateOptions;
};

export interface VerifiedArtifact<T extends VoucherLeaves = VoucherRequest> {
  envelope: VerifiedEnvelope;
  decoded: DecodedVoucher<T>;
}

export interface InspectedArtifact<T extends VoucherLeaves = VoucherRequest> {
  envelope: InspectedEnvelope;
  decoded: DecodedVoucher<T>;
}

export function encodeVoucherPayload(format: VoucherFormat, kind: VoucherKind, data: VoucherLeaves | VoucherRequest,
  opts: Pick<SignArtifactOptions, 'json' | 'cbor'> = {}): Uint8Array {
  return format === 'cose' ? encodeVoucherCbor(kind, data, opts.cbor) : encodeVoucherJson(kind, data, opts.json);
}

export function decodeVoucherPayload<T extends VoucherLeaves = VoucherRequest>(format: VoucherFormat, payload: Uint8Array,
  opts: DecodeOptions): DecodedVoucher<T> {
  return format === 'cose' ? decodeVoucherCbor<T>(payload, opts) : decodeVoucherJson<T>(payload, opts);
}

/** Encodes `data` for the format and signs it. */
export function signVoucherArtifact(format: VoucherFormat, kind: VoucherKind, data: VoucherLeaves | VoucherRequest,
  signer: Signer, opts: SignArtifactOptions = {}): Promise<Uint8Array> {
  return signEnvelope(format, encodeVoucherPayload(format, kind, data, opts), signer, opts);
}

function decodeOptions(opts: DecodeOptions & { role?: MessageRole }): DecodeOptions {
  const kind: VoucherKind | undefined = opts.kind ?? (opts.role === undefined ? undefined
    : opts.role === 'voucher' ? 'voucher' : 'voucher-request');
  const out: DecodeOptions = { strict: opts.strict };
  if (kind !== undefined) out.kind = kind;
  if (opts.legacyNames !== undefined) out.legacyNames = opts.legacyNames;
  if (opts.maxBytes !== undefined) out.maxBytes = opts.maxBytes;
  if (opts.maxDepth !== undefined) out.maxDepth = opts.maxDepth;
  return out;
}

/** Verifies the envelope, then decodes the payload (and checks the role's rules when `role` is given). */
export async function verifyVoucherArtifact<T extends VoucherLeaves = VoucherRequest>(format: VoucherFormat, bytes: Uint8Array,
  opts: VerifyArtifactOptions): Promise<VerifiedArtifact<T>> {
  const envelope = await verifyEnvelope(format, bytes, opts);
  const decoded = decodeVoucherPayload<T>(format, envelope.payload, decodeOptions(opts));
  if (opts.role !== undefined) validateVoucherData(decoded.data, opts.role, opts.validate);
  return { envelope, decoded };
}

/** Parse only — NO signature or chain verification (logging, diagnostics, picking the anchor). */
export function inspectVoucherArtifact<T extends VoucherLeaves = VoucherRequest>(format: VoucherFormat, bytes: Uint8Array,
  decodeOpts: DecodeOptions & { role?: MessageRole }): InspectedArtifact<T> {
  const envelope = inspectEnvelope(format, bytes, decodeOpts.maxBytes === undefined ? {} : { maxBytes: decodeOpts.maxBytes });
  return { envelope, decoded: decodeVoucherPayload<T>(format, envelope.payload, decodeOptions(decodeOpts)) };
}
