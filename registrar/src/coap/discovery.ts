/**
 * Resource discovery (/.well-known/core, RFC 6690 link format; digest §9.1, §4.1) and the
 * Uri-Path-Abbrev table (draft-ietf-core-uri-path-abbrev; option number and values are still
 * provisional, digest §11 #24, so they live only here).
 */
import { BrskiError } from '@brski/shared/errors';

interface Link { path: string; rt: string; ct?: readonly number[] }

export const LINKS: readonly Link[] = [
  { path: '/.well-known/brski', rt: 'brski' },
  { path: '/.well-known/brski/rv', rt: 'brski.rv', ct: [836] },
  { path: '/.well-known/brski/vs', rt: 'brski.vs', ct: [50, 60] },
  { path: '/.well-known/brski/es', rt: 'brski.es', ct: [50, 60] },
  { path: '/.well-known/est', rt: 'ace.est' },
  { path: '/.well-known/est/crts', rt: 'ace.est.crts', ct: [281, 287, 62] },
  { path: '/.well-known/est/sen', rt: 'ace.est.sen', ct: [281, 287] },
  { path: '/.well-known/est/sren', rt: 'ace.est.sren', ct: [281, 287] },
  { path: '/.well-known/est/att', rt: 'ace.est.att', ct: [285] },
];

function render(l: Link): string {
  const ct = l.ct ? (l.ct.length === 1 ? `;ct=${l.ct[0]}` : `;ct="${l.ct.join(' ')}"`) : '';
  return `<${l.path}>;rt=${l.rt}${ct}`;
}

/**
 * Links matching an RFC 6690 §4.1 query filter on `rt` or `href` (a trailing `*` is a prefix
 * match). Other attributes filter nothing out but are not an error; several filters must all match.
 * A broken percent-escape is the client's error (4.00), not ours.
 */
export function linkFormat(query: string): string {
  const decode = (s: string): string => {
    try { return decodeURIComponent(s); } catch { throw new BrskiError('malformed', 'Uri-Query with a broken percent-escape'); }
  };
  const filters = query.split('&').filter(Boolean).map((q) => {
    const i = q.indexOf('=');
    return { name: decode(i < 0 ? q : q.slice(0, i)), value: decode(i < 0 ? '' : q.slice(i + 1)) };
  });
  const matches = (actual: string, wanted: string) => (wanted.endsWith('*') ? actual.startsWith(wanted.slice(0, -1)) : actual === wanted);
  return LINKS.filter((l) => filters.every((f) => {
    if (f.name === 'rt') return matches(l.rt, f.value);
    if (f.name === 'href') return matches(l.path, f.value);
    return true;
  })).map(render).join(',');
}

/**
 * Uri-Path-Abbrev: provisional option number (CPA13) and the requested values this registrar serves.
 * 304 (/est/skg) and 305 (/est/skc) are left out: server-side key generation is not offered, so
 * those values get 4.02 like any value we do not support, never 4.04 (digest §9.1, §12 Registrar 15).
 */
export const URI_PATH_ABBREV_OPTION = 13;
export const URI_PATH_ABBREV: ReadonlyMap<number, string> = new Map([
  [0, '/.well-known/core'],
  [301, '/.well-known/est/crts'],
  [302, '/.well-known/est/sen'],
  [303, '/.well-known/est/sren'],
  [306, '/.well-known/est/att'],
  [401, '/.well-known/brski/es'],
  [402, '/.well-known/brski/rv'],
  [403, '/.well-known/brski/vs'],
]);

/** Short base paths hosted in addition to /.well-known (digest §9.1: treated identically). */
export const SHORT_BASES: ReadonlyMap<string, string> = new Map([
  ['/b/', '/.well-known/brski/'],
  ['/est/', '/.well-known/est/'],
]);
