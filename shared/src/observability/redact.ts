/**
 * Secret redaction for log lines, by key name at any depth.
 *
 * Why not pino's `redact` option: it compiles paths, and wildcard paths (`*.pin`, `*.*.pin` …, which
 * a by-name rule needs) put a redacting stringifier on every top-level key of every line, ~25 µs per
 * line on the voucher path. This walk reads the keys once (~1 µs for a request line) and copies an
 * object only on the path to a secret, so the caller's object is never changed.
 */

/** Keys whose values are never logged: the names redactConfig uses, plus cookies (case-insensitive suffix). */
export const SECRET_KEY = /(pin|password|passphrase|token|secret|privatekey|apikey|authorization|cookie)$/i;

export const CENSOR = '[redacted]';

/** Beyond this depth a subtree is replaced as a whole: a bounded walk must not let a deep secret through. */
export const MAX_DEPTH = 8;
const TOO_DEEP = '[redacted: nested too deep]';

/** Values JSON.stringify renders from something other than their own keys, or as `{}`: nothing to walk. */
function opaque(o: object): boolean {
  return typeof (o as { toJSON?: unknown }).toJSON === 'function' || ArrayBuffer.isView(o) || o instanceof Map || o instanceof Set
    || o instanceof WeakMap || o instanceof WeakSet || o instanceof Promise;
}

/**
 * `value` with every property whose key matches SECRET_KEY replaced by CENSOR, at any depth (arrays
 * included). Returns `value` itself when nothing needs redacting; otherwise copies of the objects on
 * the way to each secret (same prototype and property descriptors, so an Error keeps message and
 * stack for pino's err serializer). Cycles end at MAX_DEPTH.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || opaque(value)) return value;
  if (depth >= MAX_DEPTH) return TOO_DEEP as T;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const r = redactSecrets(v, depth + 1);
      if (r !== v) { out ??= value.slice(); out[i] = r; }
    }
    return (out ?? value) as T;
  }
  let out: Record<string, unknown> | undefined;
  const src = value as Record<string, unknown>;
  for (const key in src) {
    if (!Object.prototype.hasOwnProperty.call(src, key)) continue;
    const v = src[key];
    const r = v !== undefined && SECRET_KEY.test(key) ? CENSOR : redactSecrets(v, depth + 1);
    if (r !== v) {
      out ??= Object.create(Object.getPrototypeOf(src), Object.getOwnPropertyDescriptors(src)) as Record<string, unknown>;
      Object.defineProperty(out, key, { value: r, enumerable: true, writable: true, configurable: true });
    }
  }
  return (out ?? value) as T;
}
