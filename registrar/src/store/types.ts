/**
 * The registrar's persistent state, behind one interface with a memory and a Redis
 * implementation. Stores know storage, not protocol rules: every method is a small atomic
 * step the authority / CA compose. Timestamps are RFC 3339 strings (UTC).
 */
import { BrskiError } from '@brski/shared/errors';
import type { VoucherFormat } from '@brski/shared/media';

export const PLEDGE_STATES = ['requested', 'waiting-approval', 'voucher-issued', 'enrolled', 'failed', 'revoked'] as const;
export type PledgeState = (typeof PLEDGE_STATES)[number];

/** Last status telemetry a pledge sent (digest §7.1/§7.2). */
export interface StatusReport {
  at: string;
  version: number;
  status: boolean;
  reason?: string;
  reasonContext?: unknown;
  /** Whether it arrived on a TLS session whose client certificate belongs to this pledge. */
  authenticated: boolean;
}

export interface PledgeRecord {
  /** IDevID subject serialNumber (never the PVR's claim). */
  serial: string;
  state: PledgeState;
  createdAt: string;
  updatedAt: string;
  /** SHA-256 (hex) of the IDevID DER that last spoke for this serial. */
  idevidFingerprint?: string;
  /** idevid-issuer bytes (hex) as sent in the RVR. */
  idevidIssuer?: string;
  manufacturer?: string;
  masaUrl?: string;
  voucherFormat?: VoucherFormat;
  voucherIssuedAt?: string;
  enrolledAt?: string;
  /** Serial (hex) of the current, non-superseded LDevID. */
  currentCertificate?: string;
  lastError?: string;
  voucherStatus?: StatusReport;
  enrollStatus?: StatusReport;
  /** Verdict of the MASA audit-log policy for the current voucher (authority/audit-policy.ts). */
  audit?: PledgeAuditState;
}

export interface AuditViolation {
  kind: 'foreign-domain' | 'nonceless' | 'incomplete-log';
  /** base64 domainID the events name (absent for incomplete-log). */
  domainID?: string;
  /** How many events (or, for incomplete-log, arbitrarily dropped events). */
  count: number;
}

export type AuditStatus = 'passed' | 'failed' | 'unavailable' | 'cleared';

export interface PledgeAuditState {
  status: AuditStatus;
  /** voucherIssuedAt of the voucher whose RVR was audited (or that the operator cleared). */
  voucherIssuedAt: string;
  at: string;
  /** Events in the log (passed / failed). */
  events?: number;
  violations?: AuditViolation[];
  /** Why the log could not be obtained (unavailable). */
  error?: string;
  /** cleared: who cleared and what was cleared. */
  clearedBy?: string;
  clearedStatus?: AuditStatus;
}

/** Fields an update may set; `null` deletes the field. `serial`/`createdAt` are managed by the store. */
export type PledgePatch = { [K in Exclude<keyof PledgeRecord, 'serial' | 'createdAt' | 'updatedAt'>]?: PledgeRecord[K] | null };

export interface PledgeEvent {
  at: string;
  type: string;
  detail?: Record<string, unknown>;
}

export type ApprovalDecision = 'pending' | 'approved' | 'denied';
export interface ApprovalRecord {
  serial: string;
  decision: ApprovalDecision;
  requestedAt: string;
  decidedAt?: string;
  decidedBy?: string;
  manufacturer?: string;
}

/** The voucher last relayed to a pledge, plus the RVR that obtained it (kept for the audit log). */
export interface VoucherRecord {
  serial: string;
  format: VoucherFormat;
  voucher: Uint8Array;
  rvr: Uint8Array;
  masaUrl: string;
  issuedAt: string;
  /** Nonce bytes (hex), absent for nonceless vouchers. */
  nonce?: string;
}

/**
 * Outcome of the MASA exchange for one exact PVR (keyed by its SHA-256), shared between
 * registrar processes so that a 202 retry landing on another process still finds the voucher.
 */
export interface VoucherJob {
  pvrDigest: string;
  serial: string;
  status: 'pending' | 'issued' | 'refused';
  updatedAt: string;
  attempts: number;
  /** issued: the voucher as it goes to the pledge. */
  voucher?: Uint8Array;
  /** issued: its format, when it is not the PVR's (the pledge's Accept excluded that one). */
  voucherFormat?: VoucherFormat;
  /** refused: HTTP status and error code to answer the pledge's retry with. */
  httpStatus?: number;
  errorCode?: string;
  message?: string;
}

export interface CertificateRecord {
  /** Certificate serial number, lower-case hex without leading zeros beyond one byte boundary. */
  serialNumber: string;
  der: Uint8Array;
  pledgeSerial: string;
  issuedAt: string;
  notAfter: string;
  /** Serial of the certificate this one replaced (re-enrollment). */
  supersedes?: string;
  /** Serial of the certificate that replaced this one. */
  supersededBy?: string;
  revokedAt?: string;
  revocationReason?: RevocationReason;
}

export type RevocationReason = 'unspecified' | 'keyCompromise' | 'superseded' | 'cessationOfOperation' | 'affiliationChanged';
export interface RevocationRecord {
  serialNumber: string;
  revokedAt: string;
  reason: RevocationReason;
}

export interface CrlRecord {
  der: Uint8Array;
  crlNumber: string;
  /** Revocation version the CRL reflects (see `revocationVersion`). */
  version: number;
  nextUpdate: string;
}

export interface ListOptions { state?: PledgeState; offset?: number; limit?: number }

export interface RegistrarStore {
  // --- pledges -------------------------------------------------------------------------
  getPledge(serial: string): Promise<PledgeRecord | undefined>;
  /** Newest first (by last update). */
  listPledges(opts?: ListOptions): Promise<PledgeRecord[]>;
  /** Creates the pledge on first use; applies the patch and appends the event atomically. */
  updatePledge(serial: string, patch: PledgePatch, event: Omit<PledgeEvent, 'at'> & { at?: string }): Promise<PledgeRecord>;
  /** Oldest first; the store keeps at most MAX_EVENTS per pledge. */
  pledgeEvents(serial: string): Promise<PledgeEvent[]>;

  // --- approvals -----------------------------------------------------------------------
  getApproval(serial: string): Promise<ApprovalRecord | undefined>;
  /** Creates a pending approval unless one exists; returns the record now stored. */
  requestApproval(serial: string, manufacturer: string | undefined, at: string): Promise<ApprovalRecord>;
  /** Sets the decision; undefined when no approval exists for that serial. */
  decideApproval(serial: string, decision: 'approved' | 'denied', by: string, at: string): Promise<ApprovalRecord | undefined>;
  listApprovals(decision?: ApprovalDecision): Promise<ApprovalRecord[]>;

  // --- allowlist (serials or glob patterns) ---------------------------------------------
  listAllowlist(): Promise<string[]>;
  addAllowlist(entry: string): Promise<boolean>;
  removeAllowlist(entry: string): Promise<boolean>;

  // --- voucher exchange ----------------------------------------------------------------
  getVoucherJob(pvrDigest: string): Promise<VoucherJob | undefined>;
  /** Creates the job only if absent (the creator does the MASA work); returns whether it was created. */
  createVoucherJob(job: VoucherJob, ttlSeconds: number): Promise<boolean>;
  putVoucherJob(job: VoucherJob, ttlSeconds: number): Promise<void>;
  /** Forgets the job so that the next identical PVR starts a fresh MASA exchange. */
  deleteVoucherJob(pvrDigest: string): Promise<void>;
  saveVoucher(record: VoucherRecord): Promise<void>;
  getVoucher(serial: string): Promise<VoucherRecord | undefined>;

  // --- certificates --------------------------------------------------------------------
  /** Strictly increasing across every process sharing the store. */
  nextCertificateSerial(): Promise<bigint>;
  /**
   * Records an issued certificate, sets it as the pledge's current one and, when it
   * `supersedes` another, links both. Throws StoreConflictError (and records nothing) if the
   * superseded certificate was already superseded or is revoked, or the serial already exists.
   */
  recordCertificate(record: CertificateRecord): Promise<void>;
  getCertificate(serialNumber: string): Promise<CertificateRecord | undefined>;
  listCertificates(pledgeSerial: string): Promise<CertificateRecord[]>;

  // --- revocation / CRL ----------------------------------------------------------------
  /** Marks the certificate revoked (false if unknown or already revoked) and bumps the revocation version. */
  revokeCertificate(serialNumber: string, reason: RevocationReason, at: string): Promise<boolean>;
  listRevocations(): Promise<RevocationRecord[]>;
  revocationVersion(): Promise<number>;
  nextCrlNumber(): Promise<bigint>;
  getCrl(): Promise<CrlRecord | undefined>;
  /** Stores the CRL unless a CRL for a newer revocation version is already stored. */
  saveCrl(crl: CrlRecord): Promise<void>;

  close(): Promise<void>;
}

export const MAX_EVENTS = 200;

/** A store-level precondition failed (concurrent update); nothing was written. */
export class StoreConflictError extends BrskiError {
  constructor(message: string) { super('conflict', message); }
}

// --- operator listings and settings ------------------------------------------------------
// Declared as a merged interface block so these additions stay separate from the hot-path
// methods above; both store implementations provide them.

/** Admission modes (registrar.yaml `policy.mode` is the initial value). */
export type AdmissionMode = 'accept' | 'allowlist' | 'approve';
export const ADMISSION_MODES: readonly AdmissionMode[] = ['accept', 'allowlist', 'approve'];

/** An operator's choice of admission mode, shared by every process on the store. */
export interface AdmissionModeRecord {
  mode: AdmissionMode;
  setAt: string;
  setBy: string;
}

/** One admission-mode change, kept in the store's policy audit trail. */
export interface PolicyChangeRecord {
  at: string;
  by: string;
  /** Where the change came from (`console`, `admin-api`). */
  via: string;
  /** Effective modes before and after. */
  from: AdmissionMode;
  to: AdmissionMode;
  /** True when the operator setting was cleared and the configured mode applies again. */
  reset?: boolean;
}

export interface CertificateListOptions { offset?: number; limit?: number }

export const MAX_POLICY_CHANGES = 200;

export interface RegistrarStore {
  /** Every recorded certificate, newest recording first; limit defaults to 100. */
  listIssuedCertificates(opts?: CertificateListOptions): Promise<CertificateRecord[]>;
  countIssuedCertificates(): Promise<number>;
  /** The operator-set admission mode; undefined while the configured mode applies. */
  getAdmissionMode(): Promise<AdmissionModeRecord | undefined>;
  /** Sets (or, with null, clears) the operator mode and appends the change to the trail, atomically. */
  setAdmissionMode(record: AdmissionModeRecord | null, change: PolicyChangeRecord): Promise<void>;
  /** Newest first; the store keeps at most MAX_POLICY_CHANGES. */
  listPolicyChanges(limit?: number): Promise<PolicyChangeRecord[]>;
}
