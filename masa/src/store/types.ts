/**
 * The MASA's persistent state, split per concern so that each part of the service depends only on
 * the narrow slice it needs. Two implementations honour this contract: `memory.ts` (demos, unit
 * tests) and `redis.ts` (production). Both are exercised by the same contract suite
 * (masa/test/store.contract.ts).
 *
 * Every multi-step update that the protocol needs to be all-or-nothing is ONE method here
 * (`commitVoucher`, `registerDevice`, `consumeRate`), so that an implementation can make it atomic
 * (a Lua script in Redis) and a refused request leaves nothing behind.
 */
import type { Assertion } from '@brski/shared/voucher/model';
import type { VoucherFormat } from '@brski/shared/media';

export type OwnershipPolicy = 'claimed' | 'first-use' | 'open';
export const OWNERSHIP_POLICIES: readonly OwnershipPolicy[] = ['claimed', 'first-use', 'open'];

/** A device we made: written once by the factory (or an admin import), then only revoked/re-policed. */
export interface DeviceRecord {
  serial: string;
  /** idevid-issuer bytes (digest §8.4, 26-byte form), base64. */
  idevidIssuer: string;
  /** SHA-256 over the IDevID's DER SubjectPublicKeyInfo, lower-case hex. */
  keyFingerprint: string;
  /** Factory station that requested the IDevID ('admin-import' for imported devices). */
  station: string;
  /** RFC 3339 time of issuance. */
  issuedAt: string;
  location: string;
  productLine: string;
  revoked: boolean;
  revokedAt?: string;
  revocationReason?: string;
  /** Per-device ownership policy override; absent → product line → config default. */
  policy?: OwnershipPolicy;
  /** The IDevID itself (DER, base64): lets the MASA verify COSE PVRs without a chain in the RVR. */
  certificate: string;
  /** Certificate serial number, hex, for revocation lists and traceability. */
  certificateSerial: string;
}

export interface Ownership {
  /** domainIDs (base64) named by sales records (admin claims). */
  claimed: string[];
  /** domainID that won the device under the first-use policy. */
  firstUse?: string;
}

/** One audit log entry; `hash` chains it to its predecessor so that tampering is detectable. */
export interface AuditEntry {
  /** 1-based position in the device's log. */
  seq: number;
  date: string;
  /** base64 domainID of the pinned certificate (SKI, else SPKI SHA-256). */
  domainId: string;
  /** The nonce string exactly as it went into the voucher (JSON form; base64 for CBOR), null if nonceless. */
  nonce: string | null;
  assertion: Assertion;
  format: VoucherFormat;
  /** SHA-256 fingerprint (hex) and subject of the registrar's TLS client certificate. */
  registrarCert: string;
  registrarSubject: string;
  /** SHA-256 (hex) of the voucher bytes handed out. */
  voucherHash: string;
  /** Hash of the previous entry (GENESIS_HASH for the first). */
  prevHash: string;
  hash: string;
}

export type AuditEntryDraft = Omit<AuditEntry, 'seq' | 'prevHash' | 'hash'>;

/** Everything the issuance decision needs to read for one device, fetched in one round trip. */
export interface IssuanceContext {
  device: DeviceRecord | undefined;
  ownership: Ownership;
  /** Hash of the newest audit entry (GENESIS_HASH when empty): the chain head to append after. */
  auditHead: string;
  auditLength: number;
  /**
   * The stored ownership policy of `productLine` when the caller named one (read in the same
   * round trip as the device); the caller uses it only if the device turns out to be of that line.
   */
  linePolicy?: { line: string; policy: OwnershipPolicy | undefined };
}

export interface VoucherCommit {
  serial: string;
  /** Nonce ledger key (canonical: hex of the nonce bytes); absent for nonceless vouchers. */
  nonceKey?: string;
  nonceTtlSeconds: number;
  /** Set when the policy is first-use: record this domain as owner unless another one already is. */
  firstUseDomainId?: string;
  /** Set for 'claimed' policy: the claim must still exist at commit time. */
  requireClaimedDomainId?: string;
  audit: AuditEntryDraft;
  /** Chain head the caller read; a store retries internally if it moved. */
  expectedHead?: string;
}

export type CommitRefusal = 'unknown-device' | 'device-revoked' | 'replayed-nonce' | 'claimed-by-other-domain' | 'not-claimed';
export type CommitResult = { ok: true; entry: AuditEntry } | { ok: false; reason: CommitRefusal };

export type RegisterResult =
  | { status: 'created'; device: DeviceRecord }
  /** Same serial, same key: an idempotent retry (the station lost our answer). */
  | { status: 'exists'; device: DeviceRecord }
  /** Same serial, different key: a clone attempt. Nothing was written. */
  | { status: 'clone'; device: DeviceRecord };

export interface RateResult { allowed: boolean; count: number; limit: number; resetAt: number }

export interface IssuanceRecord {
  serial: string;
  station: string;
  issuedAt: string;
  keyFingerprint: string;
  location: string;
  productLine: string;
  certificateSerial: string;
}

export interface DeviceStore {
  getDevice(serial: string): Promise<DeviceRecord | undefined>;
  /** Atomic: creates the record unless the serial exists (then reports exists/clone, writes nothing). */
  registerDevice(device: DeviceRecord): Promise<RegisterResult>;
  /** Returns false when the device is unknown. */
  setRevoked(serial: string, revoked: boolean, reason?: string, at?: Date): Promise<boolean>;
  setDevicePolicy(serial: string, policy: OwnershipPolicy | null): Promise<boolean>;
}

export interface OwnershipStore {
  getOwnership(serial: string): Promise<Ownership>;
  claim(serial: string, domainId: string): Promise<void>;
  /** Removes a sales-record claim and, if it is that domain, the first-use owner. Returns whether anything changed. */
  unclaim(serial: string, domainId: string): Promise<boolean>;
  getProductLinePolicy(line: string): Promise<OwnershipPolicy | undefined>;
  setProductLinePolicy(line: string, policy: OwnershipPolicy | null): Promise<void>;
}

export interface NonceLedger {
  /** Atomic SET-if-absent with expiry: true the first time (serial, nonce) is seen. */
  claimNonce(serial: string, nonceKey: string, ttlSeconds: number): Promise<boolean>;
}

export interface AuditStore {
  readAudit(serial: string): Promise<AuditEntry[]>;
}

export interface VoucherLedger {
  /**
   * Everything issuance decides on, in one round trip. `productLine` (a hint, e.g. remembered
   * from an earlier request for the serial) adds that line's stored policy to the same read.
   */
  issuanceContext(serial: string, opts?: { productLine?: string }): Promise<IssuanceContext>;
  /**
   * The one write of a voucher issuance, all-or-nothing: device still known and not revoked,
   * nonce unused (then recorded with expiry), ownership still as decided (first-use recorded),
   * audit entry appended to the hash chain, vouchers-issued counter bumped.
   */
  commitVoucher(commit: VoucherCommit): Promise<CommitResult>;
}

export interface StationRateLimiter {
  /** Fixed-window counter: counts this attempt and says whether it is within `limit` per window. */
  consumeRate(station: string, limit: number, windowSeconds: number, now?: number): Promise<RateResult>;
}

export interface IssuanceLog {
  /** Per-station index of issued IDevIDs, for the factory report. */
  recordIssuance(rec: IssuanceRecord): Promise<void>;
  issuanceReport(station: string | undefined, from: Date, to: Date): Promise<IssuanceRecord[]>;
}

export interface MasaStore extends DeviceStore, OwnershipStore, NonceLedger, AuditStore, VoucherLedger,
  StationRateLimiter, IssuanceLog {
  readonly kind: 'memory' | 'redis';
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
