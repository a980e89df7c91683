/**
 * Format dispatch for the three voucher envelopes, plus a content sniffer for callers that
 * received bytes without a trustworthy media type (files, CLI input).
 */
import type { Signer } from '../crypto/signer.ts';
import type { VoucherFormat } from '../media.ts';
import { inspectCms, signCms, verifyCms, type SignCmsOptions, type VerifyCmsOptions } from './cms.ts';
import { inspectCose, signCose, verifyCose, type SignCoseOptions } from './cose.ts';
import { inspectJws, signJws, verifyJws, type SignJwsOptions, type VerifyJwsOptions } from './jws.ts';
import type { InspectedEnvelope, VerifiedEnvelope, VerifyOptions } from './types.ts';

export type { InspectedEnvelope, VerifiedEnvelope, VerifyOptions } from './types.ts';
export { DEFAULT_MAX_BYTES } from './types.ts';

export type SignEnvelopeOptions = SignCmsOptions & SignJwsOptions & SignCoseOptions;
export type VerifyEnvelopeOptions = VerifyOptions & Pick<VerifyCmsOptions, 'acceptIdData'> & Pick<VerifyJwsOptions, 'allowCompact' | 'signatureIndex'>;

export function signEnvelope(format: VoucherFormat, payload: Uint8Array, signer: Signer,
  opts: SignEnvelopeOptions = {}): Promise<Uint8Array> {
  switch (format) {
    case 'cms': return signCms(payload, signer, opts);
    case 'jws': return signJws(payload, signer, opts);
    case 'cose': return signCose(payload, signer, opts);
  }
}

export function verifyEnvelope(format: VoucherFormat, bytes: Uint8Array, opts: VerifyEnvelopeOptions): Promise<VerifiedEnvelope> {
  switch (format) {
    case 'cms': return verifyCms(bytes, opts);
    case 'jws': return verifyJws(bytes, opts);
    case 'cose': return verifyCose(bytes, opts);
  }
}

/** Parse only — NO verification. */
export function inspectEnvelope(format: VoucherFormat, bytes: Uint8Array, opts: { maxBytes?: number } = {}): InspectedEnvelope {
  switch (format) {
    case 'cms': return inspectCms(bytes, opts);
    case 'jws': return inspectJws(bytes, opts);
    case 'cose': return inspectCose(bytes, opts);
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Guesses the envelope format from the first bytes: COSE (tag 18 = 0xD2, or a bare 4-array 0x84),
 * JWS (a JSON object with "payload"/"signatures", or compact `eyJ…`), CMS (DER SEQUENCE 0x30,
 * or base64 text of one, which starts with "MI"). Undefined when nothing fits.
 */
export function detectFormat(bytes: Uint8Array): VoucherFormat | undefined {
  const first = bytes[0];
  if (first === undefined) return undefined;
  if (first === 0xd2 || first === 0x84) return 'cose';
  if (first === 0x30) return 'cms';
  let i = 0;
  while (i < bytes.length && WS.has(bytes[i]!)) i++;
  const head = Buffer.from(bytes.subarray(i, i + 3)).toString('latin1');
  if (head.startsWith('{')) {
    // Full parse only for plausible sizes; beyond that the member-name sniff is enough.
    if (bytes.length > 1024 * 1024) return /"(signatures|payload)"\s*:/.test(Buffer.from(bytes).toString('utf8')) ? 'jws' : undefined;
    try {
      const obj: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      if (typeof obj === 'object' && obj !== null && ('signatures' in obj || 'payload' in obj)) return 'jws';
    } catch {
      return undefined;
    }
    return undefined;
  }
  if (head.startsWith('MI')) return 'cms';
  if (head === 'eyJ') return 'jws';
  return undefined;
}
