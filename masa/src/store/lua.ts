/**
 * The MASA's Lua scripts. Each one is a multi-key update that must be all-or-nothing; all keys of
 * one script share the `{serial}` hash tag (see keys.ts), so they also work on Redis Cluster.
 * Hash computation stays in Node (Redis Lua has only SHA-1): the commit script does a
 * compare-and-set on the audit chain head instead.
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string, readonly numKeys: number) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** EVALSHA, falling back to EVAL once when the server does not have the script cached yet. */
  async run(client: Redis | Cluster, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (keys.length !== this.numKeys) throw new Error(`script expects ${this.numKeys} keys, got ${keys.length}`);
    try {
      return await client.evalsha(this.sha, this.numKeys, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.includes('NOSCRIPT')) throw e;
      return client.eval(this.source, this.numKeys, ...keys, ...args);
    }
  }
}

/**
 * The read before a voucher decision, as one command (a MULTI of six reads costs the MASA eight
 * client-side commands and replies per voucher).
 * KEYS: device, owners, firstUse, auditHead, audit[, linePolicy]
 * Returns {HGETALL device (flat), SMEMBERS owners, firstUse|nil, auditHead|nil, LLEN audit, linePolicy|nil}.
 */
const ISSUANCE_CONTEXT_SOURCE = `
local line = false
if #KEYS > 5 then line = redis.call('GET', KEYS[6]) end
return {redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2]), redis.call('GET', KEYS[3]),
  redis.call('GET', KEYS[4]), redis.call('LLEN', KEYS[5]), line}
`;
export const ISSUANCE_CONTEXT = new LuaScript(ISSUANCE_CONTEXT_SOURCE, 5);
/** The same read plus the product line's policy key (single node / Sentinel: the keys' slots do not matter). */
export const ISSUANCE_CONTEXT_WITH_LINE = new LuaScript(ISSUANCE_CONTEXT_SOURCE, 6);

/**
 * KEYS: device, owners, firstUse, nonce, audit, auditHead
 * ARGV: hasNonce('1'|'0'), nonceTtlSeconds, firstUseDomain|'', requireClaimed|'', expectedHead, expectedLength,
 *       entryJson, entryHash, genesisHash
 * Returns 'ok' | refusal code | {'head-moved', head, length}.
 */
export const COMMIT_VOUCHER = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown-device' end
if redis.call('HGET', KEYS[1], 'revoked') == '1' then return 'device-revoked' end
if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[4]) == 0 then return 'not-claimed' end
if ARGV[3] ~= '' then
  local fu = redis.call('GET', KEYS[3])
  if fu and fu ~= ARGV[3] then return 'claimed-by-other-domain' end
  if redis.call('SCARD', KEYS[2]) > 0 and redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 0 then
    return 'claimed-by-other-domain'
  end
end
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return 'replayed-nonce' end
local head = redis.call('GET', KEYS[6]) or ARGV[9]
local len = redis.call('LLEN', KEYS[5])
if head ~= ARGV[5] or tostring(len) ~= ARGV[6] then return {'head-moved', head, len} end
if ARGV[1] == '1' then redis.call('SET', KEYS[4], '1', 'EX', tonumber(ARGV[2])) end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'NX') end
redis.call('RPUSH', KEYS[5], ARGV[7])
redis.call('SET', KEYS[6], ARGV[8])
redis.call('HINCRBY', KEYS[1], 'vouchers', 1)
return 'ok'
`, 6);

/**
 * KEYS: device   ARGV: recordJson, keyFingerprint, policy|''
 * Creates the device unless the serial exists. Returns 'created' | 'exists' (same key) | 'clone'.
 */
export const REGISTER_DEVICE = new LuaScript(`
local fp = redis.call('HGET', KEYS[1], 'keyFingerprint')
if fp then
  if fp == ARGV[2] then return 'exists' end
  return 'clone'
end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'keyFingerprint', ARGV[2], 'revoked', '0', 'vouchers', '0')
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'policy', ARGV[3]) end
return 'created'
`, 1);

/** KEYS: rate window counter   ARGV: windowMs.  INCR and set the expiry on first use; returns the count. */
export const CONSUME_RATE = new LuaScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[1])) end
return n
`, 1);

/** KEYS: device  ARGV: revoked('1'|'0'), revokedAt, reason.  Returns 0 when the device is unknown. */
export const SET_REVOKED = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'revoked', '1', 'revokedAt', ARGV[2], 'revocationReason', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'revoked', '0')
  redis.call('HDEL', KEYS[1], 'revokedAt', 'revocationReason')
end
return 1
`, 1);

/** KEYS: device  ARGV: policy | ''(clear).  Returns 0 when the device is unknown. */
export const SET_POLICY = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'policy') else redis.call('HSET', KEYS[1], 'policy', ARGV[1]) end
return 1
`, 1);

/** KEYS: owners, firstUse  ARGV: domainId.  Removes the claim and a matching first-use owner; returns 1 if anything changed. */
export const UNCLAIM = new LuaScript(`
local changed = redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]); changed = 1 end
return changed
`, 2);
