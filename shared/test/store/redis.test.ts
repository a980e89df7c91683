import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisHandle } from '../../../test/helpers/redis.ts';
import {
  createRedisClient, isRedisConnectivityError, mapRedisError, redisConfigSchema, redisHealthCheck,
  redisUnavailable, waitForRedis, withRedis, type RedisClient,
} from '../../src/store/redis.ts';
import { BrskiError } from '../../src/errors.ts';

describe('real Redis via startRedis()', () => {
  let redis: RedisHandle;
  let client: RedisClient;

  beforeAll(async () => {
    redis = await startRedis({ aof: true });
    client = createRedisClient({ mode: 'single', url: redis.url });
    await waitForRedis(client);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it('SET NX stores once and refuses the second writer', async () => {
    expect(await client.set('nonce:abc', '1', 'EX', 60, 'NX')).toBe('OK');
    expect(await client.set('nonce:abc', '2', 'EX', 60, 'NX')).toBeNull();
    expect(await client.get('nonce:abc')).toBe('1');
  });

  it('health check answers while Redis is up', async () => {
    await expect(redisHealthCheck(client)()).resolves.toBeUndefined();
  });

  it('a restart keeps data written before it (AOF), and the client reconnects by itself', async () => {
    await client.set('durable', 'yes');
    await redis.restart();
    await waitForRedis(client, 15_000);
    expect(await client.get('durable')).toBe('yes');
  });

  it('a cut surfaces as a fast 503 unavailable, not a queued command', async () => {
    const cut = createRedisClient({ mode: 'single', url: redis.url });
    await waitForRedis(cut);
    await redis.stop();
    // Wait until ioredis has noticed the close.
    await new Promise<void>((resolve) => { if (cut.status !== 'ready') resolve(); else cut.once('close', () => resolve()); });
    const err = await withRedis(() => cut.get('durable')).catch((e: unknown) => e);
    cut.disconnect();
    expect(err).toBeInstanceOf(BrskiError);
    expect((err as BrskiError).code).toBe('unavailable');
    expect((err as BrskiError).httpStatus).toBe(503);
    expect((err as BrskiError).retryAfter).toBeGreaterThan(0);
  });
});

describe('Redis error mapping', () => {
  it('maps connectivity failures to 503 with Retry-After', () => {
    const e = redisUnavailable(new Error('Connection is closed.'), 7);
    expect(e.code).toBe('unavailable');
    expect(e.retryAfter).toBe(7);
    expect(mapRedisError(new Error("Stream isn't writeable and enableOfflineQueue options is false")).code).toBe('unavailable');
    expect(mapRedisError(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })).code).toBe('unavailable');
  });

  it('maps command bugs to 500 internal, not 503', () => {
    const wrongType = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    expect(isRedisConnectivityError(wrongType)).toBe(false);
    expect(mapRedisError(wrongType).code).toBe('internal');
    expect(mapRedisError('not an error').code).toBe('internal');
  });
});

describe('redisConfigSchema', () => {
  it('accepts the three modes and infers mode from the shape', () => {
    expect(redisConfigSchema.parse({ url: 'redis://r:6379' })).toMatchObject({ mode: 'single' });
    expect(redisConfigSchema.parse({ sentinels: [{ host: 's', port: 26379 }], name: 'mymaster' })).toMatchObject({ mode: 'sentinel' });
    expect(redisConfigSchema.parse({ cluster: [{ host: 'c', port: 7000 }] })).toMatchObject({ mode: 'cluster', nodes: [{ host: 'c', port: 7000 }] });
  });

  it('refuses bad shapes', () => {
    expect(redisConfigSchema.safeParse({ mode: 'single', url: 'http://x' }).success).toBe(false);
    expect(redisConfigSchema.safeParse({ mode: 'sentinel', sentinels: [], name: 'm' }).success).toBe(false);
    expect(redisConfigSchema.safeParse({ mode: 'cluster', nodes: [{ host: 'c', port: 0 }] }).success).toBe(false);
    expect(redisConfigSchema.safeParse({ mode: 'single', url: 'redis://x', bogus: 1 }).success).toBe(false);
  });
});
