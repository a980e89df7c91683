/**
 * In-memory model of ietf-voucher and ietf-voucher-request (8366bis, digest §5).
 * Property names are camelCase forms of the YANG leaf names; binary leaves are bytes,
 * date-and-time leaves keep the RFC 3339 text exactly as received.
 * The leaf table in `leaves.ts` maps each property to its YANG name, type and SID delta.
 */

export type VoucherKind = 'voucher' | 'voucher-request';

export type Assertion = 'verified' | 'logged' | 'proximity' | 'agent-proximity';
export const ASSERTIONS: readonly Assertion[] = ['verified', 'logged', 'proximity', 'agent-proximity'];

/** Leaves shared by vouchers and voucher-requests. */
export interface VoucherLeaves {
  createdOn?: string;
  expiresOn?: string;
  assertion?: Assertion;
  serialNumber: string;
  idevidIssuer?: Uint8Array;
  pinnedDomainCert?: Uint8Array;
  pinnedDomainPubk?: Uint8Array;
  pinnedDomainPubkSha256?: Uint8Array;
  domainCertRevocationChecks?: boolean;
  lastRenewalDate?: string;
  nonce?: Uint8Array;
  estDomain?: string;
  additionalConfigurationUrl?: string;
  manufacturerProprietary?: Uint8Array;
  /** Extension module names (JSON) or SIDs (CBOR). */
  extensions?: Array<string | number>;
}

export type Voucher = VoucherLeaves;

export interface VoucherRequest extends VoucherLeaves {
  priorSignedVoucherRequest?: Uint8Array;
  proximityRegistrarCert?: Uint8Array;
  proximityRegistrarPubk?: Uint8Array;
  proximityRegistrarPubkSha256?: Uint8Array;
  agentSignedData?: Uint8Array;
  agentProvidedProximityRegistrarCert?: Uint8Array;
  agentSignCert?: Uint8Array[];
}

/** Which message a payload is, for the mandatory-leaf rules of digest §5.3. */
export type MessageRole = 'pvr' | 'rvr' | 'voucher';

export interface DecodedVoucher<T extends VoucherLeaves = VoucherLeaves> {
  kind: VoucherKind;
  data: T;
  /** Member names (JSON) or keys (CBOR) that were present but unknown (kept only in lenient mode). */
  unknown: string[];
  /**
   * JSON only: the nonce string exactly as it appeared (digest §11 #18: the MASA copies it
   * verbatim into a JSON voucher and never re-encodes it).
   */
  nonceText?: string;
  /**
   * Extension data (8366bis §extensions): JSON `"extension:<module>"` members keyed by module name,
   * CBOR keys `47(<module SID>)` keyed by SID (or by name for name-keyed CBOR). Only entries whose
   * module is listed in the `extensions` leaf; anything else is an unknown member.
   */
  extensionData?: Map<string | number, unknown>;
}

export interface DecodeOptions {
  /** Expected kind; a different top-level member is an error. Absent: either is accepted. */
  kind?: VoucherKind;
  /** Strict: unknown members are rejected (our own services). Lenient: ignored (pledge rule). */
  strict: boolean;
  /** Accept the obsolete `ietf-voucher-request-prm:voucher` root and `ietf-voucher:voucher` in a request (interop leniency). */
  legacyNames?: boolean;
  /** Input size limit in bytes (default 64 KiB). */
  maxBytes?: number;
  /** Maximum nesting depth of the input (default 16). */
  maxDepth?: number;
}
