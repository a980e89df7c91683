/**
 * Caches for revocation answers (CRLs, OCSP): bounded, insertion-ordered Maps used as LRUs, and
 * a loader wrapper that keeps good answers until they expire, remembers failures for a while (no
 * fetch storm while a server is down) and lets concurrent callers share one load.
 */

/** Insert or refresh `k`, dropping the oldest entry beyond `max`. */
export function remember<V>(m: Map<string, V>, k: string, v: V, max = 512): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > max) m.delete(m.keys().next().value!);
}

/** A load failed now or recently; `message` says why (fit for logs and refusal texts). */
export class Unavailable extends Error {}

export class RememberedLoads<V> {
  readonly #good = new Map<string, { value: V; until: number }>();
  readonly #failed = new Map<string, { until: number; why: string }>();
  readonly #inflight = new Map<string, Promise<V>>();

  /** @param failureMs how long a failure is answered from memory */
  constructor(private readonly failureMs: number) {}

  /** The cached value for `key`, else `load()` (shared by concurrent callers); `until` says how long a value stays good. */
  async get(key: string, now: number, load: () => Promise<V>, until: (v: V) => number): Promise<V> {
    const hit = this.#good.get(key);
    if (hit && hit.until > now) return hit.value;
    const failed = this.#failed.get(key);
    if (failed && failed.until > now) throw new Unavailable(`${failed.why} (remembered)`);
    let p = this.#inflight.get(key);
    if (!p) {
      p = load().finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    try {
      const value = await p;
      remember(this.#good, key, { value, until: until(value) });
      this.#failed.delete(key);
      return value;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      remember(this.#failed, key, { until: now + this.failureMs, why });
      throw new Unavailable(why);
    }
  }
}
