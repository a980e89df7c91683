/**
 * In-memory RegistrarStore: the default for a single process and for tests. Every method runs
 * synchronously inside one event-loop turn, which gives the same atomicity the Redis store gets
 * from MULTI/Lua. Values are copied in and out so callers cannot mutate stored state.
 */
import {
  MAX_EVENTS, StoreConflictError,
  type ApprovalDecision, type ApprovalRecord, type CertificateRecord, type CrlRecord, type ListOptions,
  type PledgeEvent, type PledgePatch, type PledgeRecord, type RegistrarStore, type RevocationReason,
  type RevocationRecord, type VoucherJob, type VoucherRecord,
  MAX_POLICY_CHANGES, type AdmissionModeRecord, type CertificateListOptions, type PolicyChangeRecord,
} from './types.ts';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryRegistrarStore implements RegistrarStore {
  readonly #pledges = new Map<string, PledgeRecord>();
  readonly #events = new Map<string, PledgeEvent[]>();
  readonly #approvals = new Map<string, ApprovalRecord>();
  readonly #allowlist = new Set<string>();
  readonly #jobs = new Map<string, { job: VoucherJob; expires: number }>();
  readonly #vouchers = new Map<string, VoucherRecord>();
  readonly #certs = new Map<string, CertificateRecord>();
  readonly #certsByPledge = new Map<string, string[]>();
  readonly #revocations = new Map<string, RevocationRecord>();
  #certSerial = 0n;
  #crlNumber = 0n;
  #revocationVersion = 0;
  #crl: CrlRecord | undefined;
  /** Certificate serials in recording order (oldest first). */
  readonly #certLog: string[] = [];
  #admissionMode: AdmissionModeRecord | undefined;
  readonly #policyLog: PolicyChangeRecord[] = [];

  async getPledge(serial: string): Promise<PledgeRecord | undefined> {
    const p = this.#pledges.get(serial);
    return p && clone(p);
  }

  async listPledges(opts: ListOptions = {}): Promise<PledgeRecord[]> {
    const all = [...this.#pledges.values()]
      .filter((p) => !opts.state || p.state === opts.state)
      .sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
    const offset = opts.offset ?? 0;
    return clone(all.slice(offset, offset + (opts.limit ?? 1000)));
  }

  async updatePledge(serial: string, patch: PledgePatch, event: Omit<PledgeEvent, 'at'> & { at?: string }): Promise<PledgeRecord> {
    const at = event.at ?? new Date().toISOString();
    const current: PledgeRecord = this.#pledges.get(serial) ?? { serial, state: 'requested', createdAt: at, updatedAt: at };
    const next: Record<string, unknown> = { ...current };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      if (v === null) delete next[k]; else next[k] = clone(v);
    }
    next['updatedAt'] = at;
    this.#pledges.set(serial, next as unknown as PledgeRecord);
    const events = this.#events.get(serial) ?? [];
    events.push(clone({ ...event, at }));
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
    this.#events.set(serial, events);
    return clone(next as unknown as PledgeRecord);
  }

  async pledgeEvents(serial: string): Promise<PledgeEvent[]> {
    return clone(this.#events.get(serial) ?? []);
  }

  async getApproval(serial: string): Promise<ApprovalRecord | undefined> {
    const a = this.#approvals.get(serial);
    return a && clone(a);
  }

  async requestApproval(serial: string, manufacturer: string | undefined, at: string): Promise<ApprovalRecord> {
    let a = this.#approvals.get(serial);
    if (!a) {
      a = { serial, decision: 'pending', requestedAt: at, ...(manufacturer ? { manufacturer } : {}) };
      this.#approvals.set(serial, a);
    }
    return clone(a);
  }

  async decideApproval(serial: string, decision: 'approved' | 'denied', by: string, at: string): Promise<ApprovalRecord | undefined> {
    const a = this.#approvals.get(serial);
    if (!a) return undefined;
    Object.assign(a, { decision, decidedBy: by, decidedAt: at });
    return clone(a);
  }

  async listApprovals(decision?: ApprovalDecision): Promise<ApprovalRecord[]> {
    return clone([...this.#approvals.values()].filter((a) => !decision || a.decision === decision)
      .sort((a, b) => a.requestedAt.localeCompare(b.requestedAt)));
  }

  async listAllowlist(): Promise<string[]> { return [...this.#allowlist].sort(); }
  async addAllowlist(entry: string): Promise<boolean> {
    const had = this.#allowlist.has(entry);
    this.#allowlist.add(entry);
    return !had;
  }
  async removeAllowlist(entry: string): Promise<boolean> { return this.#allowlist.delete(entry); }

  async getVoucherJob(pvrDigest: string): Promise<VoucherJob | undefined> {
    const e = this.#jobs.get(pvrDigest);
    if (!e) return undefined;
    if (e.expires <= Date.now()) { this.#jobs.delete(pvrDigest); return undefined; }
    return clone(e.job);
  }
  async createVoucherJob(job: VoucherJob, ttlSeconds: number): Promise<boolean> {
    if (await this.getVoucherJob(job.pvrDigest)) return false;
    this.#jobs.set(job.pvrDigest, { job: clone(job), expires: Date.now() + ttlSeconds * 1000 });
    return true;
  }
  async putVoucherJob(job: VoucherJob, ttlSeconds: number): Promise<void> {
    this.#jobs.set(job.pvrDigest, { job: clone(job), expires: Date.now() + ttlSeconds * 1000 });
  }

  async deleteVoucherJob(pvrDigest: string): Promise<void> { this.#jobs.delete(pvrDigest); }

  async saveVoucher(record: VoucherRecord): Promise<void> { this.#vouchers.set(record.serial, clone(record)); }
  async getVoucher(serial: string): Promise<VoucherRecord | undefined> {
    const v = this.#vouchers.get(serial);
    return v && clone(v);
  }

  async nextCertificateSerial(): Promise<bigint> { return ++this.#certSerial; }

  async recordCertificate(record: CertificateRecord): Promise<void> {
    if (this.#certs.has(record.serialNumber)) throw new StoreConflictError(`certificate ${record.serialNumber} already recorded`);
    const old = record.supersedes === undefined ? undefined : this.#certs.get(record.supersedes);
    if (record.supersedes !== undefined) {
      if (!old) throw new StoreConflictError(`superseded certificate ${record.supersedes} unknown`);
      if (old.supersededBy) throw new StoreConflictError(`certificate ${record.supersedes} was already superseded by ${old.supersededBy}`);
      if (old.revokedAt) throw new StoreConflictError(`certificate ${record.supersedes} is revoked`);
    }
    if (old) old.supersededBy = record.serialNumber;
    this.#certs.set(record.serialNumber, clone(record));
    const list = this.#certsByPledge.get(record.pledgeSerial) ?? [];
    list.push(record.serialNumber);
    this.#certsByPledge.set(record.pledgeSerial, list);
    this.#certLog.push(record.serialNumber);
  }

  async getCertificate(serialNumber: string): Promise<CertificateRecord | undefined> {
    const c = this.#certs.get(serialNumber);
    return c && clone(c);
  }

  async listCertificates(pledgeSerial: string): Promise<CertificateRecord[]> {
    return (this.#certsByPledge.get(pledgeSerial) ?? []).map((s) => clone(this.#certs.get(s)!));
  }

  async revokeCertificate(serialNumber: string, reason: RevocationReason, at: string): Promise<boolean> {
    const c = this.#certs.get(serialNumber);
    if (!c || c.revokedAt) return false;
    c.revokedAt = at;
    c.revocationReason = reason;
    this.#revocations.set(serialNumber, { serialNumber, revokedAt: at, reason });
    this.#revocationVersion++;
    return true;
  }

  async listRevocations(): Promise<RevocationRecord[]> {
    return clone([...this.#revocations.values()].sort((a, b) => a.revokedAt.localeCompare(b.revokedAt)));
  }
  async revocationVersion(): Promise<number> { return this.#revocationVersion; }
  async nextCrlNumber(): Promise<bigint> { return ++this.#crlNumber; }
  async getCrl(): Promise<CrlRecord | undefined> { return this.#crl && clone(this.#crl); }
  async saveCrl(crl: CrlRecord): Promise<void> {
    if (this.#crl && this.#crl.version > crl.version) return;
    this.#crl = clone(crl);
  }

  async close(): Promise<void> { /* nothing to release */ }

  async listIssuedCertificates(opts: CertificateListOptions = {}): Promise<CertificateRecord[]> {
    const offset = Math.max(0, opts.offset ?? 0);
    const limit = Math.max(0, opts.limit ?? 100);
    const end = this.#certLog.length - offset;
    return this.#certLog.slice(Math.max(0, end - limit), Math.max(0, end)).reverse().map((s) => clone(this.#certs.get(s)!));
  }
  async countIssuedCertificates(): Promise<number> { return this.#certLog.length; }

  async getAdmissionMode(): Promise<AdmissionModeRecord | undefined> { return this.#admissionMode && clone(this.#admissionMode); }
  async setAdmissionMode(record: AdmissionModeRecord | null, change: PolicyChangeRecord): Promise<void> {
    this.#admissionMode = record === null ? undefined : clone(record);
    this.#policyLog.unshift(clone(change));
    if (this.#policyLog.length > MAX_POLICY_CHANGES) this.#policyLog.length = MAX_POLICY_CHANGES;
  }
  async listPolicyChanges(limit = MAX_POLICY_CHANGES): Promise<PolicyChangeRecord[]> { return clone(this.#policyLog.slice(0, Math.max(0, limit))); }
}
