/**
 * Status telemetry (voucher_status / enrollstatus, digest §7.1–§7.2) and the MASA audit log
 * (§7.3). Telemetry arrives as JSON (BRSKI) or CBOR with the same text keys (cBRSKI, CF 60).
 * Audit-log numbers are emitted as integers and accepted as numeric strings (DECISION 8).
 */
import { MalformedError, VoucherValidationError } from '../errors.ts';
import { cborDecode, cborEncode } from './cbor-codec.ts';
import { parseJsonStrict, type JsonLimits } from './json.ts';
import { decodeBase64 } from './base64.ts';
import { isRfc3339DateTime } from './validate.ts';

export interface StatusTelemetry {
  version: number;
  status: boolean;
  reason?: string;
  /** Free-form object. CBOR map keys are turned into strings (e.g. cBRSKI's `{0: "…"}` → `{"0": "…"}`). */
  reasonContext?: Record<string, unknown>;
  /** Keys other than version/status/reason/reason-context (registrar logs them, §7.1). */
  unknownKeys: string[];
}

export type TelemetryEncoding = 'json' | 'cbor';

const KNOWN = new Set(['version', 'status', 'reason', 'reason-context']);

function bad(field: string, msg: string): never {
  throw new VoucherValidationError(msg, field);
}

/** CBOR value → JSON-like value (Maps to objects with string keys, bytes kept). */
function plain(v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Parses voucher-status or enroll-status telemetry. */
export function parseStatusTelemetry(bytes: Uint8Array, encoding: TelemetryEncoding, limits: JsonLimits = {}): StatusTelemetry {
  let root: unknown;
  let keys: unknown[];
  if (encoding === 'cbor') {
    const m = cborDecode(bytes, { maxBytes: limits.maxBytes, maxDepth: limits.maxDepth, allowedTags: [] });
    if (!(m instanceof Map)) throw new MalformedError('status telemetry must be a CBOR map');
    keys = [...m.keys()];
    root = m;
  } else {
    root = parseJsonStrict(bytes, limits);
    if (!isObject(root)) throw new MalformedError('status telemetry must be a JSON object');
    keys = Object.keys(root);
  }
  const get = (k: string): unknown => (root instanceof Map ? root.get(k) : (root as Record<string, unknown>)[k]);
  const version = get('version');
  if (version === undefined) bad('version', 'is required');
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) bad('version', 'must be an unsigned integer');
  const status = get('status');
  if (status === undefined) bad('status', 'is required');
  if (typeof status !== 'boolean') bad('status', 'must be a boolean');
  const out: StatusTelemetry = { version, status, unknownKeys: keys.filter((k) => !KNOWN.has(k as string)).map(String) };
  const reason = get('reason');
  if (reason !== undefined) {
    if (typeof reason !== 'string') bad('reason', 'must be a string');
    out.reason = reason;
  }
  const ctx = get('reason-context');
  if (ctx !== undefined) {
    const p = plain(ctx);
    if (!isObject(p)) bad('reason-context', 'must be an object');
    out.reasonContext = p;
  }
  return out;
}

/** Encodes status telemetry (version defaults to 1). CBOR uses the same text keys (cBRSKI). */
export function encodeStatusTelemetry(t: { version?: number; status: boolean; reason?: string; reasonContext?: Record<string, unknown> },
  encoding: TelemetryEncoding): Uint8Array {
  const obj: Record<string, unknown> = { version: t.version ?? 1, status: t.status };
  if (t.reason !== undefined) obj['reason'] = t.reason;
  if (t.reasonContext !== undefined) obj['reason-context'] = t.reasonContext;
  return encoding === 'cbor' ? cborEncode(obj) : new TextEncoder().encode(JSON.stringify(obj));
}

// ---------------------------------------------------------------------------------------------
// Audit log (RFC 8995 §5.8.1)

export interface AuditLogEvent {
  /** RFC 3339 date of the voucher issuance. */
  date: string;
  /** base64 of the domainID (SKI of the pinned cert, else SPKI SHA-256). */
  domainID: string;
  /** Nonce string exactly as in the request; null for nonceless vouchers. */
  nonce: string | null;
  /** verified / logged / proximity, or any future value such as agent-proximity (kept, not rejected). */
  assertion: string;
  /** Events for this domainID dropped by abridging. */
  truncated?: number;
}

export interface AuditLogTruncation {
  noncedDuplicates: number;
  noncelessDuplicates: number;
  arbitrary: number;
}

export interface AuditLog {
  version: number;
  events: AuditLogEvent[];
  /** Always filled on parse (missing counters are 0). */
  truncation?: AuditLogTruncation;
}

const TRUNCATION_KEYS: ReadonlyArray<[keyof AuditLogTruncation, string]> = [
  ['noncedDuplicates', 'nonced duplicates'], ['noncelessDuplicates', 'nonceless duplicates'], ['arbitrary', 'arbitrary'],
];

/** Encodes the audit log as JSON with integer counters; an all-zero truncation is omitted. */
export function encodeAuditLog(log: AuditLog): Uint8Array {
  const events = log.events.map((e) => {
    const o: Record<string, unknown> = { date: e.date, domainID: e.domainID, nonce: e.nonce, assertion: e.assertion };
    if (e.truncated !== undefined) o['truncated'] = e.truncated;
    return o;
  });
  const out: Record<string, unknown> = { version: log.version, events };
  const t = log.truncation;
  if (t && (t.noncedDuplicates || t.noncelessDuplicates || t.arbitrary)) {
    out['truncation'] = Object.fromEntries(TRUNCATION_KEYS.map(([p, k]) => [k, t[p]]));
  }
  return new TextEncoder().encode(JSON.stringify(out));
}

/** Unsigned integer, or a string of decimal digits (the RFC 8995 example writes "1", "0"). */
function uint(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^[0-9]{1,15}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) bad(field, 'must be an unsigned integer');
  return n;
}

/** Parses an audit-log response; accepts numeric strings and unknown assertion values. */
export function parseAuditLog(bytes: Uint8Array, limits: JsonLimits = {}): AuditLog {
  const root = parseJsonStrict(bytes, { maxBytes: limits.maxBytes ?? 1024 * 1024, maxDepth: limits.maxDepth });
  if (!isObject(root)) throw new MalformedError('audit log must be a JSON object');
  if (root['version'] === undefined) bad('version', 'is required');
  const version = uint(root['version'], 'version');
  const evs = root['events'];
  if (!Array.isArray(evs)) bad('events', 'must be an array');
  const events = evs.map((e: unknown, i): AuditLogEvent => {
    const at = `events[${i}]`;
    if (!isObject(e)) bad(at, 'must be an object');
    const { date, domainID, nonce, assertion, truncated } = e;
    if (!isRfc3339DateTime(date)) bad(`${at}.date`, 'must be an RFC 3339 date-and-time');
    if (typeof domainID !== 'string' || !decodeBase64(domainID)) bad(`${at}.domainID`, 'must be base64');
    // "nonce" SHOULD be present as null for nonceless vouchers; absence is read as null.
    if (nonce !== undefined && nonce !== null && typeof nonce !== 'string') bad(`${at}.nonce`, 'must be a string or null');
    if (typeof assertion !== 'string' || assertion.length === 0) bad(`${at}.assertion`, 'must be a non-empty string');
    const ev: AuditLogEvent = { date, domainID, nonce: (nonce as string | undefined) ?? null, assertion };
    if (truncated !== undefined) ev.truncated = uint(truncated, `${at}.truncated`);
    return ev;
  });
  const truncation: AuditLogTruncation = { noncedDuplicates: 0, noncelessDuplicates: 0, arbitrary: 0 };
  const t = root['truncation'];
  if (t !== undefined) {
    if (!isObject(t)) bad('truncation', 'must be an object');
    for (const [p, k] of TRUNCATION_KEYS) if (t[k] !== undefined) truncation[p] = uint(t[k], `truncation.${k}`);
  }
  return { version, events, truncation };
}
