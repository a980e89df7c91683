/**
 * The one table of ietf-voucher / ietf-voucher-request leaves (draft-ietf-anima-rfc8366bis,
 * SID files revision 2025-12-18, digest §5.4). Every codec and validator reads this table;
 * nothing else in the code base may hard-code a SID or a leaf name.
 *
 * Deltas are child SID − container SID. The same leaf has different deltas in the two modules
 * (serial-number: 11 in a voucher, 13 in a request), so always look up with the module named
 * by the top-level key.
 */
import type { VoucherKind, VoucherRequest } from './model.ts';

export type LeafType = 'string' | 'binary' | 'date' | 'enum' | 'boolean' | 'uri' | 'leaf-list' | 'binary-list';

/** Every property a voucher or voucher-request data object may carry (camelCase of the YANG name). */
export type LeafProp = keyof VoucherRequest;

export interface LeafDef {
  prop: LeafProp;
  /** YANG leaf name, also the RFC 7951 JSON member name and the CBOR name-form key. */
  yang: string;
  type: LeafType;
  /** SID delta in ietf-voucher (parent 2451); absent when the leaf exists only in requests. */
  voucherDelta?: number;
  /** SID delta in ietf-voucher-request (parent 2501). */
  requestDelta?: number;
}

export const VOUCHER_MODULE = 'ietf-voucher';
export const VOUCHER_REQUEST_MODULE = 'ietf-voucher-request';
/** Obsolete module name used by the BRSKI-PRM examples (digest §11 #15); accepted only with `legacyNames`. */
export const LEGACY_PRM_MODULE = 'ietf-voucher-request-prm';

export const SID = {
  voucherModule: 2450,
  voucher: 2451,
  voucherRequestModule: 2500,
  voucherRequest: 2501,
} as const;

/** SID of the container (the only top-level key), per kind. */
export const TOP_SID: Readonly<Record<VoucherKind, number>> = { 'voucher': SID.voucher, 'voucher-request': SID.voucherRequest };
/** RFC 7951 top-level member / CBOR name-form top key, per kind. */
export const TOP_MEMBER: Readonly<Record<VoucherKind, string>> = {
  'voucher': `${VOUCHER_MODULE}:voucher`,
  'voucher-request': `${VOUCHER_REQUEST_MODULE}:voucher`,
};
export const LEGACY_PRM_TOP_MEMBER = `${LEGACY_PRM_MODULE}:voucher`;

/** SID ranges assigned to the two modules by the IETF YANG-SID registry. */
export const MODULE_SID_RANGE: Readonly<Record<VoucherKind, readonly [number, number]>> = {
  'voucher': [2450, 2499],
  'voucher-request': [2500, 2549],
};

/**
 * Pre-2019 constrained-voucher drafts used the experimental range 1001100–1001167 (digest §11 #9).
 * We reject the whole 1001000–1001999 block so an old device is diagnosed instead of half-parsed.
 */
export const HISTORICAL_SID_RANGE: readonly [number, number] = [1001000, 1001999];

export function isHistoricalSid(sid: number | bigint): boolean {
  const n = Number(sid);
  return n >= HISTORICAL_SID_RANGE[0] && n <= HISTORICAL_SID_RANGE[1];
}

/** JSON member prefix for extension data (8366bis: `"extension:<module-name>"`). */
export const EXTENSION_MEMBER_PREFIX = 'extension:';

// Checked against vectors/sid/ietf-voucher@2025-12-18.sid and ietf-voucher-request@2025-12-18.sid
// (test/voucher/leaves.test.ts re-reads both files and compares every entry).
export const LEAVES: readonly LeafDef[] = Object.freeze([
  { prop: 'assertion', yang: 'assertion', type: 'enum', voucherDelta: 1, requestDelta: 1 },
  { prop: 'createdOn', yang: 'created-on', type: 'date', voucherDelta: 2, requestDelta: 2 },
  { prop: 'domainCertRevocationChecks', yang: 'domain-cert-revocation-checks', type: 'boolean', voucherDelta: 3, requestDelta: 3 },
  { prop: 'expiresOn', yang: 'expires-on', type: 'date', voucherDelta: 4, requestDelta: 4 },
  { prop: 'idevidIssuer', yang: 'idevid-issuer', type: 'binary', voucherDelta: 5, requestDelta: 5 },
  { prop: 'lastRenewalDate', yang: 'last-renewal-date', type: 'date', voucherDelta: 6, requestDelta: 6 },
  { prop: 'nonce', yang: 'nonce', type: 'binary', voucherDelta: 7, requestDelta: 7 },
  { prop: 'pinnedDomainCert', yang: 'pinned-domain-cert', type: 'binary', voucherDelta: 8, requestDelta: 8 },
  { prop: 'priorSignedVoucherRequest', yang: 'prior-signed-voucher-request', type: 'binary', requestDelta: 9 },
  { prop: 'proximityRegistrarCert', yang: 'proximity-registrar-cert', type: 'binary', requestDelta: 10 },
  { prop: 'proximityRegistrarPubkSha256', yang: 'proximity-registrar-pubk-sha256', type: 'binary', requestDelta: 11 },
  { prop: 'proximityRegistrarPubk', yang: 'proximity-registrar-pubk', type: 'binary', requestDelta: 12 },
  { prop: 'pinnedDomainPubk', yang: 'pinned-domain-pubk', type: 'binary', voucherDelta: 9, requestDelta: 17 },
  { prop: 'pinnedDomainPubkSha256', yang: 'pinned-domain-pubk-sha256', type: 'binary', voucherDelta: 10, requestDelta: 18 },
  { prop: 'serialNumber', yang: 'serial-number', type: 'string', voucherDelta: 11, requestDelta: 13 },
  { prop: 'agentProvidedProximityRegistrarCert', yang: 'agent-provided-proximity-registrar-cert', type: 'binary', requestDelta: 14 },
  { prop: 'agentSignCert', yang: 'agent-sign-cert', type: 'binary-list', requestDelta: 15 },
  { prop: 'agentSignedData', yang: 'agent-signed-data', type: 'binary', requestDelta: 16 },
  { prop: 'additionalConfigurationUrl', yang: 'additional-configuration-url', type: 'uri', voucherDelta: 12, requestDelta: 19 },
  { prop: 'estDomain', yang: 'est-domain', type: 'uri', voucherDelta: 13, requestDelta: 20 },
  { prop: 'manufacturerProprietary', yang: 'manufacturer-proprietary', type: 'binary', voucherDelta: 14, requestDelta: 22 },
  { prop: 'extensions', yang: 'extensions', type: 'leaf-list', voucherDelta: 15, requestDelta: 21 },
].map((l) => Object.freeze(l as LeafDef)));

function deltaField(kind: VoucherKind): 'voucherDelta' | 'requestDelta' {
  return kind === 'voucher' ? 'voucherDelta' : 'requestDelta';
}

function index<K>(kind: VoucherKind, key: (l: LeafDef) => K | undefined): ReadonlyMap<K, LeafDef> {
  const m = new Map<K, LeafDef>();
  for (const l of LEAVES) {
    if (l[deltaField(kind)] === undefined) continue;
    const k = key(l);
    if (k !== undefined) m.set(k, l);
  }
  return m;
}

const KINDS: readonly VoucherKind[] = ['voucher', 'voucher-request'];
const byYang = new Map(KINDS.map((k) => [k, index(k, (l) => l.yang)]));
const byProp = new Map(KINDS.map((k) => [k, index(k, (l) => l.prop)]));
const byDelta = new Map(KINDS.map((k) => [k, index(k, (l) => l[deltaField(k)])]));

/** Leaves of one module, in SID order (the order our encoders emit). */
export function leavesFor(kind: VoucherKind): LeafDef[] {
  const f = deltaField(kind);
  return LEAVES.filter((l) => l[f] !== undefined).sort((a, b) => a[f]! - b[f]!);
}

export function leafByYang(kind: VoucherKind, yang: string): LeafDef | undefined {
  return byYang.get(kind)!.get(yang);
}

export function leafByProp(kind: VoucherKind, prop: string): LeafDef | undefined {
  return byProp.get(kind)!.get(prop as LeafProp);
}

export function leafByDelta(kind: VoucherKind, delta: number): LeafDef | undefined {
  return byDelta.get(kind)!.get(delta);
}

/** Leaf for an absolute SID of the given module (e.g. 2508 → nonce in a request). */
export function leafBySid(kind: VoucherKind, sid: number): LeafDef | undefined {
  return leafByDelta(kind, sid - TOP_SID[kind]);
}

export function deltaOf(kind: VoucherKind, leaf: LeafDef): number {
  const d = leaf[deltaField(kind)];
  if (d === undefined) throw new RangeError(`${leaf.yang} is not a leaf of ${TOP_MEMBER[kind]}`);
  return d;
}

export function sidOf(kind: VoucherKind, leaf: LeafDef): number {
  return TOP_SID[kind] + deltaOf(kind, leaf);
}

/** Which kind a top-level SID or name denotes (no legacy names). */
export function kindOfTop(key: unknown): VoucherKind | undefined {
  for (const k of KINDS) if (key === TOP_SID[k] || key === TOP_MEMBER[k]) return k;
  return undefined;
}
