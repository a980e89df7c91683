/**
 * Redis MasaStore (ioredis; standalone, Sentinel or Cluster client). Keys and expiries live in
 * keys.ts; multi-key updates are the Lua scripts of lua.ts. A voucher issuance costs two round
 * trips: one pipelined read (issuanceContext, with the product line's policy when the caller
 * knows the line) and one script (commitVoucher).
 */
import type { Cluster, Redis } from 'ioredis';
import { GENESIS_HASH, sealEntry } from './audit-chain.ts';
import { keys } from './keys.ts';
import { COMMIT_VOUCHER, CONSUME_RATE, ISSUANCE_CONTEXT, ISSUANCE_CONTEXT_WITH_LINE, REGISTER_DEVICE, SET_POLICY, SET_REVOKED, UNCLAIM } from './lua.ts';
import {
  OWNERSHIP_POLICIES, type AuditEntry, type CommitRefusal, type CommitResult, type DeviceRecord, type IssuanceContext,
  type IssuanceRecord, type MasaStore, type Ownership, type OwnershipPolicy, type RateResult, type RegisterResult,
  type VoucherCommit,
} from './types.ts';

/** Concurrent appends to one device's log are rare; a few CAS retries settle them. */
const MAX_COMMIT_ATTEMPTS = 16;

type Immutable = Omit<DeviceRecord, 'revoked' | 'revokedAt' | 'revocationReason' | 'policy'>;

function toPolicy(v: string | null | undefined): OwnershipPolicy | undefined {
  return v && (OWNERSHIP_POLICIES as readonly string[]).includes(v) ? v as OwnershipPolicy : undefined;
}

/**
 * Parsed immutable parts by their exact JSON text: a device asks repeatedly (retries, re-enrolment
 * vouchers) and the record is ~1–2 KB of JSON. Frozen, and copied into each DeviceRecord below.
 */
const parsedRecords = new Map<string, Readonly<Immutable>>();
const PARSED_RECORDS_MAX = 4096;

function parseRecord(text: string): Readonly<Immutable> {
  let base = parsedRecords.get(text);
  if (base === undefined) {
    base = Object.freeze(JSON.parse(text) as Immutable);
    parsedRecords.set(text, base);
    if (parsedRecords.size > PARSED_RECORDS_MAX) parsedRecords.delete(parsedRecords.keys().next().value!);
  }
  return base;
}

function deviceFromHash(h: Record<string, string>): DeviceRecord | undefined {
  if (!h['record']) return undefined;
  const base = parseRecord(h['record']);
  const d: DeviceRecord = { ...base, revoked: h['revoked'] === '1' };
  if (h['revokedAt']) d.revokedAt = h['revokedAt'];
  if (h['revocationReason']) d.revocationReason = h['revocationReason'];
  const p = toPolicy(h['policy']);
  if (p) d.policy = p;
  return d;
}

function immutablePart(d: DeviceRecord): Immutable {
  const { revoked: _r, revokedAt: _a, revocationReason: _c, policy: _p, ...rest } = d;
  return rest;
}

export class RedisMasaStore implements MasaStore {
  readonly kind = 'redis' as const;

  /** `ownsClient`: close() quits the connection (true when the store created it). */
  constructor(private readonly redis: Redis | Cluster, private readonly ownsClient = false) {}

  async ping(): Promise<boolean> {
    try { return (await this.redis.ping()) === 'PONG'; } catch { return false; }
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  // ---- devices --------------------------------------------------------------------------------
  async getDevice(serial: string): Promise<DeviceRecord | undefined> {
    return deviceFromHash(await this.redis.hgetall(keys.device(serial)));
  }

  async registerDevice(device: DeviceRecord): Promise<RegisterResult> {
    const status = await REGISTER_DEVICE.run(this.redis, [keys.device(device.serial)],
      [JSON.stringify(immutablePart(device)), device.keyFingerprint, device.policy ?? '']) as RegisterResult['status'];
    // A new device always starts unrevoked: revocation is an explicit later act.
    if (status === 'created') return { status, device: (await this.getDevice(device.serial))! };
    const existing = await this.getDevice(device.serial);
    if (!existing) throw new Error(`device ${device.serial} vanished during registration`);
    return { status, device: existing };
  }

  async setRevoked(serial: string, revoked: boolean, reason = '', at: Date = new Date()): Promise<boolean> {
    const n = await SET_REVOKED.run(this.redis, [keys.device(serial)], [revoked ? '1' : '0', at.toISOString(), reason]);
    return n === 1;
  }

  async setDevicePolicy(serial: string, policy: OwnershipPolicy | null): Promise<boolean> {
    return (await SET_POLICY.run(this.redis, [keys.device(serial)], [policy ?? ''])) === 1;
  }

  // ---- ownership ------------------------------------------------------------------------------
  async getOwnership(serial: string): Promise<Ownership> {
    const [claimed, firstUse] = await Promise.all([
      this.redis.smembers(keys.owners(serial)), this.redis.get(keys.firstUse(serial))]);
    const o: Ownership = { claimed: claimed.sort() };
    if (firstUse !== null) o.firstUse = firstUse;
    return o;
  }

  async claim(serial: string, domainId: string): Promise<void> { await this.redis.sadd(keys.owners(serial), domainId); }

  async unclaim(serial: string, domainId: string): Promise<boolean> {
    return (await UNCLAIM.run(this.redis, [keys.owners(serial), keys.firstUse(serial)], [domainId])) === 1;
  }

  async getProductLinePolicy(line: string): Promise<OwnershipPolicy | undefined> {
    return toPolicy(await this.redis.get(keys.linePolicy(line)));
  }

  async setProductLinePolicy(line: string, policy: OwnershipPolicy | null): Promise<void> {
    if (policy === null) await this.redis.del(keys.linePolicy(line));
    else await this.redis.set(keys.linePolicy(line), policy);
  }

  // ---- nonces ---------------------------------------------------------------------------------
  async claimNonce(serial: string, nonceKey: string, ttlSeconds: number): Promise<boolean> {
    return (await this.redis.set(keys.nonce(serial, nonceKey), '1', 'EX', ttlSeconds, 'NX')) === 'OK';
  }

  // ---- audit + voucher commit -----------------------------------------------------------------
  async readAudit(serial: string): Promise<AuditEntry[]> {
    const raw = await this.redis.lrange(keys.audit(serial), 0, -1);
    return raw.map((r) => JSON.parse(r) as AuditEntry);
  }

  async issuanceContext(serial: string, opts: { productLine?: string } = {}): Promise<IssuanceContext> {
    // One round trip, one script: every per-device key shares the {serial} slot, so this runs on a
    // cluster too. The product line's policy key lives in another slot: on a single node (or
    // Sentinel) it rides in the same script; a cluster cannot mix slots, so it is sent
    // concurrently instead (still one round-trip time).
    const line = opts.productLine;
    const sameTrip = line !== undefined && !this.redis.isCluster;
    const k = [keys.device(serial), keys.owners(serial), keys.firstUse(serial), keys.auditHead(serial), keys.audit(serial)];
    const read = sameTrip ? ISSUANCE_CONTEXT_WITH_LINE.run(this.redis, [...k, keys.linePolicy(line)], [])
      : ISSUANCE_CONTEXT.run(this.redis, k, []);
    const [res, separateLine] = await Promise.all([read,
      line !== undefined && !sameTrip ? this.redis.get(keys.linePolicy(line)) : Promise.resolve(null)]);
    const [flat, owners, firstUse, head, len, linePolicy] = res as [string[], string[], string | null, string | null, number, string | null];
    const dev: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) dev[flat[i]!] = flat[i + 1]!;
    const ownership: Ownership = { claimed: owners.sort() };
    if (firstUse !== null) ownership.firstUse = firstUse;
    const ctx: IssuanceContext = { device: deviceFromHash(dev), ownership, auditHead: head ?? GENESIS_HASH, auditLength: len };
    if (line !== undefined) ctx.linePolicy = { line, policy: toPolicy(sameTrip ? linePolicy : separateLine) };
    return ctx;
  }

  /** Per-device queue of commits from this process: they would otherwise only fight over the chain head. */
  readonly #commitQueue = new Map<string, Promise<unknown>>();

  commitVoucher(c: VoucherCommit): Promise<CommitResult> {
    const prev = this.#commitQueue.get(c.serial) ?? Promise.resolve();
    const run = prev.then(() => this.#commit(c), () => this.#commit(c));
    const tail = run.catch(() => undefined);
    this.#commitQueue.set(c.serial, tail);
    void tail.then(() => { if (this.#commitQueue.get(c.serial) === tail) this.#commitQueue.delete(c.serial); });
    return run;
  }

  async #commit(c: VoucherCommit): Promise<CommitResult> {
    let head = c.expectedHead;
    let length: number | undefined;
    if (head === undefined) {
      const ctx = await this.issuanceContext(c.serial);
      head = ctx.auditHead; length = ctx.auditLength;
    }
    const k = keys;
    const keyList = [k.device(c.serial), k.owners(c.serial), k.firstUse(c.serial), k.nonce(c.serial, c.nonceKey ?? '-'),
      k.audit(c.serial), k.auditHead(c.serial)];
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      if (length === undefined) length = await this.redis.llen(k.audit(c.serial));
      const entry = sealEntry(c.audit, length + 1, head);
      const r = await COMMIT_VOUCHER.run(this.redis, keyList, [
        c.nonceKey === undefined ? '0' : '1', c.nonceTtlSeconds, c.firstUseDomainId ?? '', c.requireClaimedDomainId ?? '',
        head, String(length), JSON.stringify(entry), entry.hash, GENESIS_HASH]);
      if (r === 'ok') return { ok: true, entry };
      if (Array.isArray(r) && r[0] === 'head-moved') {
        // Another MASA instance appended meanwhile: re-seal on the new head after a short jittered pause.
        head = String(r[1]); length = Number(r[2]);
        await new Promise((res) => setTimeout(res, Math.random() * 2 * (attempt + 1)));
        continue;
      }
      return { ok: false, reason: r as CommitRefusal };
    }
    throw new Error(`audit chain of ${c.serial} kept moving; gave up after ${MAX_COMMIT_ATTEMPTS} attempts`);
  }

  // ---- factory --------------------------------------------------------------------------------
  async consumeRate(station: string, limit: number, windowSeconds: number, now: number = Date.now()): Promise<RateResult> {
    const windowMs = windowSeconds * 1000;
    const window = Math.floor(now / windowMs);
    const count = Number(await CONSUME_RATE.run(this.redis, [keys.stationRate(station, window)], [windowMs]));
    return { allowed: count <= limit, count, limit, resetAt: (window + 1) * windowMs };
  }

  async recordIssuance(rec: IssuanceRecord): Promise<void> {
    // Two slots (station, global), so two commands rather than one script; the
    // device record written by registerDevice stays the source of truth.
    const member = JSON.stringify(rec);
    const score = Date.parse(rec.issuedAt);
    // Not one pipeline: on a Redis Cluster the two keys live in different slots, which ioredis refuses to pipeline.
    await Promise.all([
      this.redis.zadd(keys.stationIssued(rec.station), score, member),
      this.redis.zadd(keys.issued(), score, member),
    ]);
  }

  async issuanceReport(station: string | undefined, from: Date, to: Date): Promise<IssuanceRecord[]> {
    const key = station === undefined ? keys.issued() : keys.stationIssued(station);
    const raw = await this.redis.zrangebyscore(key, from.getTime(), `(${to.getTime()}`);
    return raw.map((r) => JSON.parse(r) as IssuanceRecord)
      .sort((a, b) => a.issuedAt.localeCompare(b.issuedAt) || a.serial.localeCompare(b.serial));
  }
}
