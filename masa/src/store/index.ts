/** Store factory: memory (embedded default) or Redis (production). */
import type { Cluster, Redis } from 'ioredis';
import { MemoryMasaStore } from './memory.ts';
import { RedisMasaStore } from './redis.ts';
import type { MasaStore } from './types.ts';

export * from './types.ts';
export { MemoryMasaStore } from './memory.ts';
export { RedisMasaStore } from './redis.ts';
export { GENESIS_HASH, verifyAuditChain, entryHash } from './audit-chain.ts';

export function memoryStore(): MasaStore { return new MemoryMasaStore(); }
export function redisStore(client: Redis | Cluster, ownsClient = true): MasaStore { return new RedisMasaStore(client, ownsClient); }
