import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedis, type RedisHandle } from '../../test/helpers/redis.ts';
import { MemoryMasaStore } from '../src/store/memory.ts';
import { RedisMasaStore } from '../src/store/redis.ts';
import { storeContract } from './store-contract.ts';

storeContract('memory', () => new MemoryMasaStore());

let redis: RedisHandle;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 2 });
});
afterAll(async () => {
  await client?.quit();
  await redis?.stop();
});
storeContract('redis', () => new RedisMasaStore(client));

import { describe, expect, it } from 'vitest';
import { device, uniqueSerial } from './store-contract.ts';

describe('Redis store durability', () => {
  it('an acknowledged voucher commit survives a Redis restart (AOF)', async () => {
    const s = new RedisMasaStore(client);
    const sn = uniqueSerial();
    await s.registerDevice(device(sn));
    const r = await s.commitVoucher({ serial: sn, nonceKey: 'abc', nonceTtlSeconds: 600, audit: {
      date: new Date().toISOString(), domainId: 'ZA==', nonce: 'abc', assertion: 'logged', format: 'cose',
      registrarCert: '00', registrarSubject: 'CN=r', voucherHash: '11' } });
    expect(r.ok).toBe(true);
    await redis.restart();
    const c2 = new Redis(redis.url, { maxRetriesPerRequest: 2 });
    try {
      const s2 = new RedisMasaStore(c2);
      expect(await s2.readAudit(sn)).toHaveLength(1);
      expect(await s2.claimNonce(sn, 'abc', 600)).toBe(false);
    } finally { await c2.quit(); }
  });
});
