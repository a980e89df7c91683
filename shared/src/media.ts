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

interface MediaRange { type: string; q: number; /** 2 exact type, 1 `application/*`, 0 `*\/*`, -1 anything else */ rank: number }

/** Parses an Accept header (RFC 9110 §12.5.1); parameter names are case-insensitive. */
function parseAccept(accept: string): MediaRange[] {
  return accept.split(',').map((part) => {
    const [type, ...params] = part.split(';');
    let q = 1;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue;
      const v = p.slice(eq + 1).trim();
      // Liberal: any number is clamped into [0, 1] (RFC 9110 allows three decimals); junk counts as 0.
      const n = v === '' ? NaN : Number(v);
      q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
    }
    const t = (type ?? '').trim().toLowerCase();
    const rank = t === '*/*' ? 0 : t === 'application/*' ? 1 : (VOUCHER_FORMATS as readonly VoucherFormat[]).some((f) => VOUCHER_MEDIA_TYPE[f] === t) ? 2 : -1;
    return { type: t, q, rank };
  }).filter((r) => r.type !== '');
}

/**
 * The weight Accept gives `format`: that of the most specific range matching its media type
 * (RFC 9110 §12.5.1), so `application/voucher-cms+json;q=0, *\/*` excludes CMS. 0 = not acceptable.
 */
function weightOf(ranges: readonly MediaRange[], format: VoucherFormat): number {
  let best: MediaRange | undefined;
  for (const r of ranges) {
    const matches = r.rank === 2 ? r.type === VOUCHER_MEDIA_TYPE[format] : r.rank >= 0;
    if (matches && (best === undefined || r.rank > best.rank || (r.rank === best.rank && r.q > best.q))) best = r;
  }
  return best?.q ?? 0;
}

/**
 * Picks the response format from an Accept header (q-values and wildcards honoured, the most
 * specific range wins). Returns `preferred` when Accept is absent or admits it as well as any
 * other; throws 406 when nothing acceptable is offered.
 */
export function negotiateVoucherFormat(accept: string | undefined, preferred: VoucherFormat,
  offered: readonly VoucherFormat[] = VOUCHER_FORMATS): VoucherFormat {
  if (!accept || !accept.trim()) return preferred;
  const ranges = parseAccept(accept);
  const candidates = [preferred, ...offered.filter((f) => f !== preferred)].filter((f) => offered.includes(f));
  let chosen: VoucherFormat | undefined;
  let chosenWeight = 0;
  for (const f of candidates) {
    const w = weightOf(ranges, f);
    if (w > chosenWeight) { chosen = f; chosenWeight = w; }
  }
  if (!chosen) throw new BrskiError('not-acceptable', `none of the offered voucher formats is acceptable (Accept: ${accept})`);
  return chosen;
}

/**
 * True when Accept (absent = yes) names at least one voucher media type or a wildcard covering
 * them, whatever its weight. The MASA answers an Accept that names none 415 ("Accept value not
 * understood", RFC 8995 §5.6, digest §3.3) and keeps 406 for understood types it cannot issue.
 */
export function acceptUnderstood(accept: string | undefined): boolean {
  if (!accept || !accept.trim()) return true;
  return parseAccept(accept).some((r) => r.rank >= 0);
}

/** True when an Accept header (absent = anything) admits `format`'s media type. */
export function acceptAdmits(accept: string | undefined, format: VoucherFormat): boolean {
  try { negotiateVoucherFormat(accept, format, [format]); return true; } catch { return false; }
}
