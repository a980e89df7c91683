/**
 * Redis connections for the services' stores (ioredis): single node, Sentinel or Cluster, with
 * settings chosen so that a Redis outage surfaces as a fast, typed 503 + Retry-After rather than
 * requests piling up in an offline queue. Key layouts live in each service's own store module.
 */
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis';
import { z } from 'zod';
import { BrskiError } from '../errors.ts';

const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict();

const common = {
  username: z.string().optional(),
  password: z.string().optional(),
  /** TLS to Redis: true, or the CA bundle (PEM text) to trust. */
  tls: z.union([z.boolean(), z.object({ ca: z.string().optional(), servername: z.string().optional() }).strict()]).optional(),
  db: z.number().int().min(0).optional(),
  /** Per-command timeout; a hung server becomes an error instead of a stuck request. */
  commandTimeoutMs: z.number().int().positive().optional(),
  connectTimeoutMs: z.number().int().positive().optional(),
  /** Queue commands while disconnected (default false: fail fast, answer 503). */
  enableOfflineQueue: z.boolean().optional(),
  /** Prefix for every key (e.g. per tenant); each service's key module adds its own. */
  keyPrefix: z.string().optional(),
};

const redisConfigVariants = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('single'), url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'), ...common }).strict(),
  z.object({ mode: z.literal('sentinel'), sentinels: z.array(hostPort).min(1), name: z.string().min(1),
    sentinelPassword: z.string().optional(), ...common }).strict(),
  z.object({ mode: z.literal('cluster'), nodes: z.array(hostPort).min(1), ...common }).strict(),
]);

/**
 * The Redis section of a service config. `mode` may be left out when the shape says it
 * (`url` → single, `sentinels` → sentinel, `nodes` or `cluster: [...]` → cluster), which is the
 * shorter form in docs/design/modules.md.
 */
export const redisConfigSchema = z.preprocess((raw) => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || 'mode' in raw) return raw;
  const r = raw as Record<string, unknown>;
  if ('url' in r) return { mode: 'single', ...r };
  if ('sentinels' in r) return { mode: 'sentinel', ...r };
  if ('cluster' in r) {
    const { cluster, ...rest } = r;
    return { mode: 'cluster', nodes: cluster, ...rest };
  }
  if ('nodes' in r) return { mode: 'cluster', ...r };
  return raw;
}, redisConfigVariants);
export type RedisConfig = z.infer<typeof redisConfigVariants>;

/** Both client kinds share the command API (ioredis Commander). */
export type RedisClient = Redis | Cluster;

/** Reconnect backoff: 50 ms doubling to 2 s, with jitter so a fleet of services does not stampede. */
export function retryDelay(attempt: number): number {
  const base = Math.min(2_000, 50 * 2 ** Math.min(attempt, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

export function createRedisClient(cfg: RedisConfig, extra: Partial<RedisOptions> = {}): RedisClient {
  const tls = cfg.tls === undefined || cfg.tls === false ? undefined : cfg.tls === true ? {} : cfg.tls;
  const base: RedisOptions = {
    ...(cfg.username === undefined ? {} : { username: cfg.username }),
    ...(cfg.password === undefined ? {} : { password: cfg.password }),
    ...(tls === undefined ? {} : { tls }),
    ...(cfg.db === undefined ? {} : { db: cfg.db }),
    ...(cfg.keyPrefix === undefined ? {} : { keyPrefix: cfg.keyPrefix }),
    commandTimeout: cfg.commandTimeoutMs ?? 2_000,
    // Commands issued in the same tick go out in one write: under load the voucher read of one
    // request and the commit of another share a syscall (Redis CPU per MASA voucher ~100 → ~70 µs).
    enableAutoPipelining: true,
    connectTimeout: cfg.connectTimeoutMs ?? 2_000,
    // A command in flight when the connection drops fails instead of being replayed: replaying
    // a SET NX whose first attempt did land would report a false "nonce replayed".
    maxRetriesPerRequest: 0,
    // After a Sentinel failover the old master turns replica and answers READONLY; the write was
    // not executed, so reconnecting (to the new master) and resending is safe.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
    ...extra,
  };
  const offlineQueue = cfg.enableOfflineQueue ?? false;

  switch (cfg.mode) {
    case 'single': {
      return new Redis(cfg.url, { ...base, enableOfflineQueue: offlineQueue, retryStrategy: retryDelay });
    }
    case 'sentinel':
      return new Redis({
        ...base,
        sentinels: cfg.sentinels,
        name: cfg.name,
        role: 'master',
        ...(cfg.sentinelPassword === undefined ? {} : { sentinelPassword: cfg.sentinelPassword }),
        enableOfflineQueue: offlineQueue,
        retryStrategy: retryDelay,
        sentinelRetryStrategy: retryDelay,
      });
    case 'cluster': {
      const { keyPrefix, ...redisOptions } = base;
      const options: ClusterOptions = {
        ...(keyPrefix === undefined ? {} : { keyPrefix }),
        redisOptions: redisOptions as ClusterOptions['redisOptions'],
        enableOfflineQueue: offlineQueue,
        clusterRetryStrategy: retryDelay,
        scaleReads: 'master',
      };
      return new Cluster(cfg.nodes, options);
    }
  }
}

/** Waits until the client is ready (connected, authenticated, for Sentinel: master found). */
export function waitForRedis(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined;
    const onReady = (): void => { cleanup(); resolve(); };
    const onError = (err: Error): void => { lastError = err; };
    const timer = setTimeout(() => {
      cleanup();
      reject(redisUnavailable(lastError ?? new Error(`not ready within ${timeoutMs} ms`)));
    }, timeoutMs);
    const cleanup = (): void => { clearTimeout(timer); client.off('ready', onReady); client.off('error', onError); };
    client.on('ready', onReady);
    client.on('error', onError);
  });
}

/** Default seconds a client should wait before retrying while the store is down. */
export const REDIS_RETRY_AFTER_S = 5;

/** Any store failure as a 503 with Retry-After. The cause is kept for logs, not sent to clients. */
export function redisUnavailable(err: unknown, retryAfter = REDIS_RETRY_AFTER_S): BrskiError {
  if (err instanceof BrskiError) return err;
  return new BrskiError('unavailable', 'storage temporarily unavailable', { retryAfter, cause: err });
}

/**
 * True for failures of the connection or the cluster topology (retry later), false for errors
 * that mean a bug in our command (WRONGTYPE, script error), which must not be dressed up as 503.
 */
export function isRedisConnectivityError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const name = err.name;
  const msg = err.message;
  const code = (err as { code?: unknown }).code;
  if (name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError') return true;
  if (typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  return /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|BUSY )/.test(msg)
    || /Connection is closed|Stream isn't writeable|Command timed out|Failed to refresh slots cache|None of startup nodes is available|All sentinels are unreachable|Reached the max retries per request/.test(msg);
}

/** Maps a store error: connectivity → 503 unavailable; anything else → 500 internal. */
export function mapRedisError(err: unknown, retryAfter = REDIS_RETRY_AFTER_S): BrskiError {
  if (err instanceof BrskiError) return err;
  if (isRedisConnectivityError(err)) return redisUnavailable(err, retryAfter);
  return new BrskiError('internal', 'storage command failed', { cause: err });
}

/** Runs a store operation, converting its failure with mapRedisError. */
export async function withRedis<T>(op: () => Promise<T>, retryAfter?: number): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw mapRedisError(err, retryAfter);
  }
}

/** A /healthz check: PING must answer PONG. */
export function redisHealthCheck(client: RedisClient): () => Promise<void> {
  return async () => {
    const pong = await client.ping();
    if (pong !== 'PONG') throw new Error(`unexpected PING answer ${JSON.stringify(pong)}`);
  };
}

/**
 * Wraps every method of a Redis-backed store so a failure surfaces as a BrskiError: lost
 * connectivity becomes 503 + Retry-After, anything else an internal error. One wrapper at
 * construction instead of a try/catch in each of the store's methods.
 */
export function guardRedisStore<T extends object>(store: T, retryAfter?: number): T {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      return (...args: unknown[]) => {
        try {
          const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result instanceof Promise ? result.catch((err: unknown) => { throw mapRedisError(err, retryAfter); }) : result;
        } catch (err) {
          throw mapRedisError(err, retryAfter);
        }
      };
    },
  });
}
