/**
 * The setup every MASA integration file shares: a test PKI, a real Redis, and the two store
 * factories (memory, Redis) the suites run against. Registers its own beforeAll/afterAll.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedis, type RedisHandle } from '../../../test/helpers/redis.ts';
import { MemoryMasaStore } from '../../src/store/memory.ts';
import { RedisMasaStore } from '../../src/store/redis.ts';
import type { MasaStore } from '../../src/store/types.ts';
import { makePki, type TestPki } from './pki.ts';

export interface MasaTestWorld {
  /** Valid inside tests and hooks (set by beforeAll). */
  readonly pki: TestPki;
  readonly stores: Array<[string, () => MasaStore]>;
}

export function useMasaTestWorld(): MasaTestWorld {
  let pki: TestPki | undefined;
  let redis: RedisHandle | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    pki = await makePki();
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
  });
  afterAll(async () => { await client?.quit(); await redis?.stop(); });
  return {
    get pki() { return pki!; },
    stores: [
      ['memory', () => new MemoryMasaStore()],
      ['redis', () => new RedisMasaStore(client!)],
    ],
  };
}
