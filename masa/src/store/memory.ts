/**
 * In-memory MasaStore: the embedded default for demos and unit tests. Single-threaded JS makes
 * each method atomic as long as it does not await in the middle, which none of them do.
 * State is lost when the process exits — production uses the Redis store.
 */
import { GENESIS_HASH, sealEntry } from './audit-chain.ts';
import type {
  AuditEntry, CommitResult, DeviceRecord, IssuanceContext, IssuanceRecord, MasaStore, Ownership, OwnershipPolicy,
  RateResult, RegisterResult, VoucherCommit,
} from './types.ts';

interface DeviceState {
  claimed: Set<string>;
  firstUse?: string;
  audit: AuditEntry[];
  vouchers: number;
}

export class MemoryMasaStore implements MasaStore {
  readonly kind = 'memory' as const;
  readonly #devices = new Map<string, DeviceRecord>();
  readonly #state = new Map<string, DeviceState>();
  /** `${serial}\0${nonceKey}` → expiry (ms). */
  readonly #nonces = new Map<string, number>();
  readonly #linePolicies = new Map<string, OwnershipPolicy>();
  readonly #rates = new Map<string, { window: number; count: number }>();
  readonly #issuance: IssuanceRecord[] = [];
  readonly #now: () => number;

  constructor(opts: { now?: () => number } = {}) { this.#now = opts.now ?? Date.now; }

  #st(serial: string): DeviceState {
    let s = this.#state.get(serial);
    if (!s) { s = { claimed: new Set(), audit: [], vouchers: 0 }; this.#state.set(serial, s); }
    return s;
  }

  async ping(): Promise<boolean> { return true; }
  async close(): Promise<void> { /* nothing to release */ }

  // ---- devices --------------------------------------------------------------------------------
  async getDevice(serial: string): Promise<DeviceRecord | undefined> {
    const d = this.#devices.get(serial);
    // DeviceRecord is flat (strings and a boolean): a spread is a full copy, at a fraction of structuredClone's cost.
    return d && { ...d };
  }

  async registerDevice(device: DeviceRecord): Promise<RegisterResult> {
    const existing = this.#devices.get(device.serial);
    if (existing) {
      return { status: existing.keyFingerprint === device.keyFingerprint ? 'exists' : 'clone', device: structuredClone(existing) };
    }
    // A new device always starts unrevoked: revocation is an explicit later act.
    const fresh: DeviceRecord = { ...structuredClone(device), revoked: false };
    delete fresh.revokedAt; delete fresh.revocationReason;
    this.#devices.set(device.serial, fresh);
    return { status: 'created', device: structuredClone(fresh) };
  }

  async setRevoked(serial: string, revoked: boolean, reason?: string, at: Date = new Date(this.#now())): Promise<boolean> {
    const d = this.#devices.get(serial);
    if (!d) return false;
    d.revoked = revoked;
    if (revoked) { d.revokedAt = at.toISOString(); if (reason !== undefined) d.revocationReason = reason; }
    else { delete d.revokedAt; delete d.revocationReason; }
    return true;
  }

  async setDevicePolicy(serial: string, policy: OwnershipPolicy | null): Promise<boolean> {
    const d = this.#devices.get(serial);
    if (!d) return false;
    if (policy === null) delete d.policy; else d.policy = policy;
    return true;
  }

  // ---- ownership ------------------------------------------------------------------------------
  async getOwnership(serial: string): Promise<Ownership> {
    const s = this.#state.get(serial);
    const o: Ownership = { claimed: s ? [...s.claimed].sort() : [] };
    if (s?.firstUse !== undefined) o.firstUse = s.firstUse;
    return o;
  }

  async claim(serial: string, domainId: string): Promise<void> { this.#st(serial).claimed.add(domainId); }

  async unclaim(serial: string, domainId: string): Promise<boolean> {
    const s = this.#state.get(serial);
    if (!s) return false;
    let changed = s.claimed.delete(domainId);
    if (s.firstUse === domainId) { delete s.firstUse; changed = true; }
    return changed;
  }

  async getProductLinePolicy(line: string): Promise<OwnershipPolicy | undefined> { return this.#linePolicies.get(line); }
  async setProductLinePolicy(line: string, policy: OwnershipPolicy | null): Promise<void> {
    if (policy === null) this.#linePolicies.delete(line); else this.#linePolicies.set(line, policy);
  }

  // ---- nonces ---------------------------------------------------------------------------------
  #nonceFree(serial: string, nonceKey: string): boolean {
    const exp = this.#nonces.get(`${serial}\0${nonceKey}`);
    return exp === undefined || exp <= this.#now();
  }

  async claimNonce(serial: string, nonceKey: string, ttlSeconds: number): Promise<boolean> {
    if (!this.#nonceFree(serial, nonceKey)) return false;
    this.#nonces.set(`${serial}\0${nonceKey}`, this.#now() + ttlSeconds * 1000);
    return true;
  }

  // ---- audit + voucher commit -----------------------------------------------------------------
  async readAudit(serial: string): Promise<AuditEntry[]> { return structuredClone(this.#state.get(serial)?.audit ?? []); }

  async issuanceContext(serial: string, opts: { productLine?: string } = {}): Promise<IssuanceContext> {
    const audit = this.#state.get(serial)?.audit ?? [];
    const ctx: IssuanceContext = {
      device: await this.getDevice(serial),
      ownership: await this.getOwnership(serial),
      auditHead: audit.at(-1)?.hash ?? GENESIS_HASH,
      auditLength: audit.length,
    };
    if (opts.productLine !== undefined) ctx.linePolicy = { line: opts.productLine, policy: this.#linePolicies.get(opts.productLine) };
    return ctx;
  }

  async commitVoucher(c: VoucherCommit): Promise<CommitResult> {
    // Check everything first, then write: a refusal leaves no trace.
    const d = this.#devices.get(c.serial);
    if (!d) return { ok: false, reason: 'unknown-device' };
    if (d.revoked) return { ok: false, reason: 'device-revoked' };
    const s = this.#st(c.serial);
    if (c.requireClaimedDomainId !== undefined && !s.claimed.has(c.requireClaimedDomainId)) return { ok: false, reason: 'not-claimed' };
    if (c.firstUseDomainId !== undefined) {
      const other = (s.firstUse !== undefined && s.firstUse !== c.firstUseDomainId)
        || (s.claimed.size > 0 && !s.claimed.has(c.firstUseDomainId));
      if (other) return { ok: false, reason: 'claimed-by-other-domain' };
    }
    if (c.nonceKey !== undefined && !this.#nonceFree(c.serial, c.nonceKey)) return { ok: false, reason: 'replayed-nonce' };

    if (c.nonceKey !== undefined) this.#nonces.set(`${c.serial}\0${c.nonceKey}`, this.#now() + c.nonceTtlSeconds * 1000);
    if (c.firstUseDomainId !== undefined) s.firstUse ??= c.firstUseDomainId;
    const entry = sealEntry(c.audit, s.audit.length + 1, s.audit.at(-1)?.hash ?? GENESIS_HASH);
    s.audit.push(entry);
    s.vouchers++;
    return { ok: true, entry: { ...entry } }; // AuditEntry is flat as well
  }

  // ---- factory --------------------------------------------------------------------------------
  async consumeRate(station: string, limit: number, windowSeconds: number, now: number = this.#now()): Promise<RateResult> {
    const windowMs = windowSeconds * 1000;
    const window = Math.floor(now / windowMs);
    let r = this.#rates.get(station);
    if (!r || r.window !== window) { r = { window, count: 0 }; this.#rates.set(station, r); }
    r.count++;
    return { allowed: r.count <= limit, count: r.count, limit, resetAt: (window + 1) * windowMs };
  }

  async recordIssuance(rec: IssuanceRecord): Promise<void> { this.#issuance.push({ ...rec }); }

  async issuanceReport(station: string | undefined, from: Date, to: Date): Promise<IssuanceRecord[]> {
    const f = from.getTime(); const t = to.getTime();
    return this.#issuance
      .filter((r) => (station === undefined || r.station === station) && Date.parse(r.issuedAt) >= f && Date.parse(r.issuedAt) < t)
      .map((r) => ({ ...r }))
      .sort((a, b) => a.issuedAt.localeCompare(b.issuedAt) || a.serial.localeCompare(b.serial));
  }
}
