/**
 * Retry-After (RFC 9110 §10.2.3) as seconds to wait: delta-seconds or an HTTP-date; undefined
 * when absent or garbage. One parser for every client here (pledge, registrar → MASA).
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, now = Date.now()): number | undefined {
  const v = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  // HTTP-dates start with the day name; Date.parse would also take '-5' as a year.
  const at = /^[a-z]{3}/i.test(v) ? Date.parse(v) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}
