/** Representative payloads per message kind: JSON (CMS/JWS) and YANG-CBOR with SID deltas (COSE). */
import { cborEncode } from '../../src/voucher/cbor-codec.ts';
import type { VoucherFormat } from '../../src/media.ts';

export type Kind = 'pvr' | 'rvr' | 'voucher';
export const KINDS: readonly Kind[] = ['pvr', 'rvr', 'voucher'];

const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

const JSON_SAMPLES: Record<Kind, unknown> = {
  pvr: { 'ietf-voucher-request:voucher': { 'assertion': 'proximity', 'serial-number': 'SN-0001', 'nonce': 'AAECAwQFBgcICQoLDA0ODw==',
    'created-on': '2026-01-01T00:00:00Z', 'proximity-registrar-cert': 'MIIBcz==' } },
  rvr: { 'ietf-voucher-request:voucher': { 'assertion': 'proximity', 'serial-number': 'SN-0001', 'nonce': 'AAECAwQFBgcICQoLDA0ODw==',
    'created-on': '2026-01-01T00:00:01Z', 'idevid-issuer': 'BBgwFoAUAAECAwQFBgcICQoLDA0ODxAREhM=', 'prior-signed-voucher-request': 'MIIB' } },
  voucher: { 'ietf-voucher:voucher': { 'assertion': 'logged', 'serial-number': 'SN-0001', 'nonce': 'AAECAwQFBgcICQoLDA0ODw==',
    'created-on': '2026-01-01T00:00:02Z', 'pinned-domain-cert': 'MIIBcz==' } },
};

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

// SID deltas from the 2025-12-18 tables (digest §5.4): request 2501, voucher 2451.
const CBOR_SAMPLES: Record<Kind, unknown> = {
  pvr: new Map([[2501, new Map<number, unknown>([[1, 2], [7, bytes(8, 1)], [12, bytes(91, 2)], [13, 'SN-0001']])]]),
  rvr: new Map([[2501, new Map<number, unknown>([[1, 2], [5, bytes(26, 3)], [7, bytes(8, 1)], [9, bytes(120, 4)], [13, 'SN-0001']])]]),
  voucher: new Map([[2451, new Map<number, unknown>([[1, 1], [7, bytes(8, 1)], [8, bytes(300, 5)], [11, 'SN-0001']])]]),
};

export function samplePayload(format: VoucherFormat, kind: Kind): Uint8Array {
  return format === 'cose' ? cborEncode(CBOR_SAMPLES[kind]) : json(JSON_SAMPLES[kind]);
}

/** Index of `needle` in `haystack` (for flipping a byte inside the embedded payload). */
export function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(Buffer.from(needle));
}
