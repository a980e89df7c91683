/**
 * The one table of media types <-> voucher formats <-> CoAP content formats (digest §3.2, §9.2).
 */
import { BrskiError } from './errors.ts';

export type VoucherFormat = 'cms' | 'jws' | 'cose';
export const VOUCHER_FORMATS: readonly VoucherFormat[] = ['cms', 'jws', 'cose'];

export const VOUCHER_MEDIA_TYPE: Record<VoucherFormat, string> = {
  cms: 'application/voucher-cms+json',
  jws: 'application/voucher-jws+json',
  cose: 'application/voucher+cose',
};

export const MEDIA = {
  json: 'application/json',
  cbor: 'application/cbor',
  text: 'text/plain; charset=utf-8',
  pkcs10: 'application/pkcs10',
  pkcs7CertsOnly: 'application/pkcs7-mime; smime-type=certs-only',
  pkcs7: 'application/pkcs7-mime',
  csrattrs: 'application/csrattrs',
  pkixCert: 'application/pkix-cert',
  pkixCrl: 'application/pkix-crl',
  linkFormat: 'application/link-format',
} as const;

export const COAP_CONTENT_FORMAT = {
  linkFormat: 40,
  json: 50,
  cbor: 60,
  multipartCore: 62,
  problemDetails: 257,
  serverGeneratedKey: 280,
  pkcs7CertsOnly: 281,
  pkcs8: 284,
  csrattrs: 285,
  pkcs10: 286,
  pkixCert: 287,
  voucherCose: 836,
} as const;

export const VOUCHER_CONTENT_FORMAT: Partial<Record<VoucherFormat, number>> = { cose: COAP_CONTENT_FORMAT.voucherCose };

/** Bare lower-case media type without parameters. */
export function bareMediaType(value: string): string {
  return value.split(';')[0]!.trim().toLowerCase();
}

export function formatFromMediaType(value: string | undefined): VoucherFormat | undefined {
  if (!value) return undefined;
  const bare = bareMediaType(value);
  for (const f of VOUCHER_FORMATS) if (VOUCHER_MEDIA_TYPE[f] === bare) return f;
  return undefined;
}

/** Like formatFromMediaType but throws 415 for an unknown or missing type. */
export function requireVoucherFormat(contentType: string | undefined): VoucherFormat {
  const f = formatFromMediaType(contentType);
  if (!f) throw new BrskiError('unsupported-media-type', `unsupported Content-Type ${JSON.stringify(contentType ?? '')}`);
  return f;
}

/**
 * Picks the response format from an Accept header (q-values honoured, wildcards allowed).
 * Returns `preferred` when Accept is absent or admits it; throws 406 when nothing acceptable is offered.
 */
export function negotiateVoucherFormat(accept: string | undefined, preferred: VoucherFormat,
  offered: readonly VoucherFormat[] = VOUCHER_FORMATS): VoucherFormat {
  if (!accept || !accept.trim()) return preferred;
  const ranges = accept.split(',').map((part) => {
    const [type, ...params] = part.split(';');
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim());
      if (k === 'q' && v !== undefined) q = Number(v);
    }
    return { type: (type ?? '').trim().toLowerCase(), q: Number.isFinite(q) ? q : 0 };
  }).filter((r) => r.type && r.q > 0);
  const score = (f: VoucherFormat): number => {
    let best = 0;
    for (const r of ranges) {
      if (r.type === VOUCHER_MEDIA_TYPE[f] || r.type === '*/*' || r.type === 'application/*') best = Math.max(best, r.q);
    }
    return best;
  };
  const candidates = [preferred, ...offered.filter((f) => f !== preferred)].filter((f) => offered.includes(f));
  let chosen: VoucherFormat | undefined;
  let chosenScore = 0;
  for (const f of candidates) {
    const s = score(f);
    if (s > chosenScore) { chosen = f; chosenScore = s; }
  }
  if (!chosen) throw new BrskiError('not-acceptable', `none of the offered voucher formats is acceptable (Accept: ${accept})`);
  return chosen;
}

/** True when an Accept header (absent = anything) admits `format`'s media type. */
export function acceptAdmits(accept: string | undefined, format: VoucherFormat): boolean {
  try { negotiateVoucherFormat(accept, format, [format]); return true; } catch { return false; }
}
