/**
 * Redis RegistrarStore (ioredis). Multi-step updates run as one MULTI block or one Lua script,
 * so two registrar processes sharing a Redis can neither duplicate a certificate serial (INCR)
 * nor lose a record (no client-side read-modify-write). Key layout: keys.ts.
 */
import type { Redis, Cluster } from 'ioredis';
import { registrarKeys, type RegistrarKeys } from './keys.ts';
import {
  MAX_EVENTS, StoreConflictError,
  type ApprovalDecision, type ApprovalRecord, type CertificateRecord, type CrlRecord, type ListOptions,
  type PledgeEvent, type PledgePatch, type PledgeRecord, type RegistrarStore, type RevocationReason,
  type RevocationRecord, type VoucherJob, type VoucherRecord,
  MAX_POLICY_CHANGES, type AdmissionModeRecord, type CertificateListOptions, type PolicyChangeRecord,
} from './types.ts';

type Client = Redis | Cluster;

// JSON with bytes: Uint8Array <-> {"$b64": "..."}; used for every stored value.
function enc(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? { $b64: Buffer.from(x).toString('base64') } : x));
}
function dec<T>(s: string): T {
  return JSON.parse(s, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x) && typeof (x as { $b64?: unknown }).$b64 === 'string'
      && Object.keys(x).length === 1) return new Uint8Array(Buffer.from((x as { $b64: string }).$b64, 'base64'));
    return x;
  }) as T;
}
function hashToRecord<T>(h: Record<string, string>): T | undefined {
  const keys = Object.keys(h);
  if (keys.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = dec(h[k]!);
  return out as T;
}
function recordToArgs(r: object): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(r)) if (v !== undefined) args.push(k, enc(v));
  return args;
}

const RECORD_CERT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if ARGV[1] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return 'unknown' end
  if redis.call('HEXISTS', KEYS[2], 'supersededBy') == 1 then return 'superseded' end
  if redis.call('HEXISTS', KEYS[2], 'revokedAt') == 1 then return 'revoked' end
  redis.call('HSET', KEYS[2], 'supersededBy', ARGV[2])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LPUSH', KEYS[4], ARGV[3])
return 'ok'`;

const REVOKE_CERT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revokedAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1], 'revocationReason', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('INCR', KEYS[3])
return 1`;

const SAVE_CRL = `
local v = redis.call('HGET', KEYS[1], 'version')
if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'der', ARGV[2], 'crlNumber', ARGV[3], 'nextUpdate', ARGV[4])
return 1`;

const DECIDE_APPROVAL = `
local s = redis.call('HGET', KEYS[1], ARGV[1])
if not s then return false end
local a = cjson.decode(s)
a['decision'] = ARGV[2]
a['decidedBy'] = ARGV[3]
a['decidedAt'] = ARGV[4]
s = cjson.encode(a)
redis.call('HSET', KEYS[1], ARGV[1], s)
return s`;

export interface RedisStoreOptions {
  domain?: string;
  prefix?: string;
  /**
   * ioredis auto-pipelining (default on): commands issued in the same event-loop tick by
   * concurrent requests go out in one write. Under load each Redis write syscall was a top
   * registrar CPU item; ordering per connection and per-command results are unchanged. The
   * client is the store's own (server.ts creates it for the store alone), so the option is set here.
   */
  autoPipelining?: boolean;
}

export class RedisRegistrarStore implements RegistrarStore {
  readonly #r: Client;
  readonly #k: RegistrarKeys;

  constructor(client: Client, opts: RedisStoreOptions = {}) {
    this.#r = client;
    this.#k = registrarKeys(opts.domain, opts.prefix);
    // Read by ioredis on every command, so setting it after construction takes effect.
    if (opts.autoPipelining ?? true) (client.options as { enableAutoPipelining?: boolean }).enableAutoPipelining = true;
  }

  async getPledge(serial: string): Promise<PledgeRecord | undefined> {
    return hashToRecord<PledgeRecord>(await this.#r.hgetall(this.#k.pledge(serial)));
  }

  async listPledges(opts: ListOptions = {}): Promise<PledgeRecord[]> {
    const offset = opts.offset ?? 0;
    const limit = opts.limit ?? 1000;
    // With a state filter we page through the index, since states are not indexed separately.
    const out: PledgeRecord[] = [];
    let skipped = 0;
    const page = 200;
    for (let start = 0; out.length < limit; start += page) {
      const serials = await this.#r.zrevrange(this.#k.pledgeIndex, start, start + page - 1);
      if (serials.length === 0) break;
      const pipe = this.#r.pipeline();
      for (const s of serials) pipe.hgetall(this.#k.pledge(s));
      const results = (await pipe.exec()) ?? [];
      for (const [err, h] of results) {
        if (err) throw err;
        const p = hashToRecord<PledgeRecord>(h as Record<string, string>);
        if (!p || (opts.state && p.state !== opts.state)) continue;
        if (skipped < offset) { skipped++; continue; }
        out.push(p);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async updatePledge(serial: string, patch: PledgePatch, event: Omit<PledgeEvent, 'at'> & { at?: string }): Promise<PledgeRecord> {
    const at = event.at ?? new Date().toISOString();
    const key = this.#k.pledge(serial);
    const set: string[] = ['updatedAt', enc(at)];
    const del: string[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      if (v === null) del.push(k); else set.push(k, enc(v));
    }
    const m = this.#r.multi()
      .hsetnx(key, 'serial', enc(serial))
      .hsetnx(key, 'createdAt', enc(at))
      .hsetnx(key, 'state', enc('requested'));
    if (del.length) m.hdel(key, ...del);
    m.hset(key, ...set)
      .rpush(this.#k.events(serial), enc({ ...event, at }))
      .ltrim(this.#k.events(serial), -MAX_EVENTS, -1)
      .zadd(this.#k.pledgeIndex, Date.parse(at), serial)
      .hgetall(key);
    const res = await m.exec();
    if (!res) throw new StoreConflictError('pledge update aborted');
    const last = res[res.length - 1]!;
    if (last[0]) throw last[0];
    return hashToRecord<PledgeRecord>(last[1] as Record<string, string>)!;
  }

  async pledgeEvents(serial: string): Promise<PledgeEvent[]> {
    return (await this.#r.lrange(this.#k.events(serial), 0, -1)).map((s) => dec<PledgeEvent>(s));
  }

  async getApproval(serial: string): Promise<ApprovalRecord | undefined> {
    const s = await this.#r.hget(this.#k.approvals, serial);
    return s === null ? undefined : dec<ApprovalRecord>(s);
  }

  async requestApproval(serial: string, manufacturer: string | undefined, at: string): Promise<ApprovalRecord> {
    const rec: ApprovalRecord = { serial, decision: 'pending', requestedAt: at, ...(manufacturer ? { manufacturer } : {}) };
    const res = await this.#r.multi().hsetnx(this.#k.approvals, serial, enc(rec)).hget(this.#k.approvals, serial).exec();
    const got = res?.[1];
    if (!got || got[0] || typeof got[1] !== 'string') throw new StoreConflictError('approval request aborted');
    return dec<ApprovalRecord>(got[1]);
  }

  async decideApproval(serial: string, decision: 'approved' | 'denied', by: string, at: string): Promise<ApprovalRecord | undefined> {
    const s = (await this.#r.eval(DECIDE_APPROVAL, 1, this.#k.approvals, serial, decision, by, at)) as string | null;
    return s ? dec<ApprovalRecord>(s) : undefined;
  }

  async listApprovals(decision?: ApprovalDecision): Promise<ApprovalRecord[]> {
    const all = Object.values(await this.#r.hgetall(this.#k.approvals)).map((s) => dec<ApprovalRecord>(s));
    return all.filter((a) => !decision || a.decision === decision).sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  async listAllowlist(): Promise<string[]> { return (await this.#r.smembers(this.#k.allowlist)).sort(); }
  async addAllowlist(entry: string): Promise<boolean> { return (await this.#r.sadd(this.#k.allowlist, entry)) === 1; }
  async removeAllowlist(entry: string): Promise<boolean> { return (await this.#r.srem(this.#k.allowlist, entry)) === 1; }

  async getVoucherJob(pvrDigest: string): Promise<VoucherJob | undefined> {
    const s = await this.#r.get(this.#k.job(pvrDigest));
    return s === null ? undefined : dec<VoucherJob>(s);
  }
  async createVoucherJob(job: VoucherJob, ttlSeconds: number): Promise<boolean> {
    return (await this.#r.set(this.#k.job(job.pvrDigest), enc(job), 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX')) === 'OK';
  }
  async putVoucherJob(job: VoucherJob, ttlSeconds: number): Promise<void> {
    await this.#r.set(this.#k.job(job.pvrDigest), enc(job), 'EX', Math.max(1, Math.ceil(ttlSeconds)));
  }

  async deleteVoucherJob(pvrDigest: string): Promise<void> { await this.#r.del(this.#k.job(pvrDigest)); }

  async saveVoucher(record: VoucherRecord): Promise<void> { await this.#r.set(this.#k.voucher(record.serial), enc(record)); }
  async getVoucher(serial: string): Promise<VoucherRecord | undefined> {
    const s = await this.#r.get(this.#k.voucher(serial));
    return s === null ? undefined : dec<VoucherRecord>(s);
  }

  async nextCertificateSerial(): Promise<bigint> { return BigInt(await this.#r.incr(this.#k.certSerial)); }

  async recordCertificate(record: CertificateRecord): Promise<void> {
    const old = record.supersedes;
    const res = (await this.#r.eval(RECORD_CERT, 4,
      this.#k.cert(record.serialNumber), this.#k.cert(old ?? record.serialNumber), this.#k.certsOf(record.pledgeSerial), this.#k.certLog,
      old === undefined ? '0' : '1', enc(record.serialNumber), record.serialNumber, ...recordToArgs(record))) as string;
    if (res !== 'ok') throw new StoreConflictError(`certificate ${record.serialNumber} not recorded: ${res}${old ? ` (supersedes ${old})` : ''}`);
  }

  async getCertificate(serialNumber: string): Promise<CertificateRecord | undefined> {
    return hashToRecord<CertificateRecord>(await this.#r.hgetall(this.#k.cert(serialNumber)));
  }

  async listCertificates(pledgeSerial: string): Promise<CertificateRecord[]> {
    const serials = await this.#r.lrange(this.#k.certsOf(pledgeSerial), 0, -1);
    const out: CertificateRecord[] = [];
    for (const s of serials) {
      const c = await this.getCertificate(s);
      if (c) out.push(c);
    }
    return out;
  }

  async revokeCertificate(serialNumber: string, reason: RevocationReason, at: string): Promise<boolean> {
    const rec: RevocationRecord = { serialNumber, revokedAt: at, reason };
    const n = (await this.#r.eval(REVOKE_CERT, 3, this.#k.cert(serialNumber), this.#k.revoked, this.#k.revocationVersion,
      enc(at), enc(reason), serialNumber, enc(rec))) as number;
    return n === 1;
  }

  async listRevocations(): Promise<RevocationRecord[]> {
    return Object.values(await this.#r.hgetall(this.#k.revoked)).map((s) => dec<RevocationRecord>(s))
      .sort((a, b) => a.revokedAt.localeCompare(b.revokedAt));
  }
  async revocationVersion(): Promise<number> { return Number((await this.#r.get(this.#k.revocationVersion)) ?? 0); }
  async nextCrlNumber(): Promise<bigint> { return BigInt(await this.#r.incr(this.#k.crlNumber)); }

  async getCrl(): Promise<CrlRecord | undefined> {
    const h = await this.#r.hgetall(this.#k.crl);
    if (!h['der']) return undefined;
    return { der: new Uint8Array(Buffer.from(h['der'], 'base64')), crlNumber: h['crlNumber']!, version: Number(h['version']), nextUpdate: h['nextUpdate']! };
  }
  async saveCrl(crl: CrlRecord): Promise<void> {
    await this.#r.eval(SAVE_CRL, 1, this.#k.crl, String(crl.version), Buffer.from(crl.der).toString('base64'), crl.crlNumber, crl.nextUpdate);
  }

  async close(): Promise<void> { await this.#r.quit().catch(() => undefined); }

  async listIssuedCertificates(opts: CertificateListOptions = {}): Promise<CertificateRecord[]> {
    const offset = Math.max(0, opts.offset ?? 0);
    const limit = Math.max(0, opts.limit ?? 100);
    if (limit === 0) return [];
    const serials = await this.#r.lrange(this.#k.certLog, offset, offset + limit - 1);
    const pipe = this.#r.pipeline();
    for (const s of serials) pipe.hgetall(this.#k.cert(s));
    const out: CertificateRecord[] = [];
    for (const [err, h] of (await pipe.exec()) ?? []) {
      if (err) throw err;
      const c = hashToRecord<CertificateRecord>(h as Record<string, string>);
      if (c) out.push(c);
    }
    return out;
  }
  async countIssuedCertificates(): Promise<number> { return this.#r.llen(this.#k.certLog); }

  async getAdmissionMode(): Promise<AdmissionModeRecord | undefined> {
    const s = await this.#r.get(this.#k.admissionMode);
    return s === null ? undefined : dec<AdmissionModeRecord>(s);
  }
  async setAdmissionMode(record: AdmissionModeRecord | null, change: PolicyChangeRecord): Promise<void> {
    const m = this.#r.multi();
    if (record === null) m.del(this.#k.admissionMode); else m.set(this.#k.admissionMode, enc(record));
    const res = await m.lpush(this.#k.policyLog, enc(change)).ltrim(this.#k.policyLog, 0, MAX_POLICY_CHANGES - 1).exec();
    if (!res) throw new StoreConflictError('admission mode update aborted');
    for (const [err] of res) if (err) throw err;
  }
  async listPolicyChanges(limit = MAX_POLICY_CHANGES): Promise<PolicyChangeRecord[]> {
    if (limit <= 0) return [];
    return (await this.#r.lrange(this.#k.policyLog, 0, limit - 1)).map((s) => dec<PolicyChangeRecord>(s));
  }
}
