/**
 * Voucher payload codec by envelope format: JSON inside CMS and JWS, YANG-CBOR inside COSE
 * (digest §6). A thin composition of the shared codecs, so the authority does not care which
 * encoding a format uses.
 */
import type { VoucherFormat } from '@brski/shared/media';
import { decodeVoucherCbor, encodeVoucherCbor } from '@brski/shared/voucher/cbor';
import { decodeVoucherJson, encodeVoucherJson } from '@brski/shared/voucher/json';
import type { DecodedVoucher, Voucher, VoucherRequest } from '@brski/shared/voucher/model';

export function decodeRequestPayload(format: VoucherFormat, payload: Uint8Array): DecodedVoucher<VoucherRequest> {
  // Lenient about unknown members (other registrars, newer drafts); strict about the kind.
  const opts = { kind: 'voucher-request' as const, strict: false };
  return format === 'cose' ? decodeVoucherCbor<VoucherRequest>(payload, opts) : decodeVoucherJson<VoucherRequest>(payload, opts);
}

export function encodeVoucherPayload(format: VoucherFormat, voucher: Voucher, nonceText: string | undefined): Uint8Array {
  if (format === 'cose') return encodeVoucherCbor('voucher', voucher);
  return encodeVoucherJson('voucher', voucher, nonceText === undefined ? {} : { nonceText });
}
