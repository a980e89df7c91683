/**
 * Voucher / voucher-request content rules (digest §5.1–§5.3, DECISIONs 2, 3, 6).
 *
 * Two layers:
 *  - per-leaf checks (`checkLeaves`): YANG types and single-leaf constraints, run by every
 *    decoder and encoder, so a decoded object never holds a wrongly typed value;
 *  - per-message rules (`validateVoucherData`): which leaves a PVR / RVR / voucher must or must
 *    not carry. Flavour 'parse' is what we accept from others (8366bis: only serial-number is
 *    mandatory in the YANG); 'emit' is the stricter profile for what our own services send.
 * Every error is a VoucherValidationError naming the YANG leaf.
 */
import { VoucherValidationError } from '../errors.ts';
import { ASSERTIONS, type MessageRole, type VoucherKind, type VoucherLeaves, type VoucherRequest } from './model.ts';
import { LEAVES, TOP_MEMBER, leafByProp, type LeafDef } from './leaves.ts';

export const NONCE_MIN_BYTES = 8;
export const NONCE_MAX_BYTES = 32;
export const SHA256_BYTES = 32;

export interface ValidateOptions {
  /** 'parse' (default): what we accept. 'emit': what our own services may send (implies strictExclusive). */
  flavour?: 'parse' | 'emit';
  /** Reject a voucher carrying both nonce and expires-on (RFC 8366 rule; 8366bis dropped it, DECISION 3). */
  strictExclusive?: boolean;
}

// yang:date-and-time (RFC 6991) pattern: upper-case T and Z only, optional fraction, offset ±hh:mm.
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/;
// inet:uri: RFC 3986 scheme followed by ':' and no whitespace or control characters.
const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s\u0000-\u001f\u007f]*$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;
const LEAP_SECOND = /:60(\.\d+)?(?=Z|[+-])/;

/** True when `s` is a valid yang:date-and-time (RFC 3339 with real calendar values). */
export function isRfc3339DateTime(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]), h = Number(m[4]), mi = Number(m[5]), sec = Number(m[6]);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = mo === 2 && leap ? 29 : MONTH_DAYS[mo - 1];
  if (days === undefined || d < 1 || d > days || h > 23 || mi > 59 || sec > 60) return false;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return !Number.isNaN(parseDate(s).getTime());
}

/** Parses a yang:date-and-time; a leap second (:60) is read as :59.999. Throws naming `leaf`. */
export function parseVoucherDate(s: string, leaf = 'date'): Date {
  if (!isRfc3339DateTime(s)) throw new VoucherValidationError(`not an RFC 3339 date-and-time: ${JSON.stringify(s)}`, leaf);
  return parseDate(s);
}

function parseDate(s: string): Date {
  return LEAP_SECOND.test(s) ? new Date(Date.parse(s.replace(LEAP_SECOND, ':59.999'))) : new Date(Date.parse(s));
}

/** idevid-issuer: AKI extnValue incl. `04 len` (8366bis), or the bare SEQUENCE (DECISION 4). */
export function isIdevidIssuerForm(b: Uint8Array): boolean {
  const inner = b[0] === 0x04 ? tlvToEnd(b, 0, 0x04) : 0;
  return inner !== undefined && tlvToEnd(b, inner, 0x30) !== undefined;
}

/** Content offset of the element with `tag` at `at` if it ends exactly at the end of `b`. */
function tlvToEnd(b: Uint8Array, at: number, tag: number): number | undefined {
  if (b[at] !== tag || at + 1 >= b.length) return undefined;
  let len = b[at + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 2 || at + 2 + n > b.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | b[at + 2 + i]!;
    hdr += n;
  }
  return at + hdr + len === b.length ? at + hdr : undefined;
}

function fail(leaf: string, msg: string): never {
  throw new VoucherValidationError(msg, leaf);
}

/**
 * Checks one leaf value against its YANG type (incl. the nonce length restriction) and, when
 * `content` is set, the constraints from the leaf descriptions (32-byte hashes, idevid-issuer
 * form, non-empty serial and certificates). Decoders check types only, so that the published
 * placeholder examples ("base64encodedvalue==") still parse; validateVoucherData and the
 * encoders check both.
 */
export function checkLeafValue(def: LeafDef, value: unknown, content = true): void {
  const name = def.yang;
  switch (def.type) {
    case 'string':
      if (typeof value !== 'string') fail(name, 'must be a string');
      if (content && def.prop === 'serialNumber' && value.length === 0) fail(name, 'must not be empty');
      return;
    case 'date':
      if (typeof value !== 'string') fail(name, 'must be a date-and-time string');
      if (!isRfc3339DateTime(value)) fail(name, `not an RFC 3339 date-and-time: ${JSON.stringify(value)}`);
      return;
    case 'enum':
      if (!ASSERTIONS.includes(value as never)) fail(name, `unknown value ${JSON.stringify(value)}`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail(name, 'must be a boolean');
      return;
    case 'uri':
      if (typeof value !== 'string' || !URI_RE.test(value)) fail(name, 'must be a URI');
      return;
    case 'binary':
      if (!(value instanceof Uint8Array)) fail(name, 'must be binary');
      checkBinary(def, value, content);
      return;
    case 'binary-list':
      if (!Array.isArray(value) || value.length === 0) fail(name, 'must be a non-empty list of certificates');
      for (const v of value) if (!(v instanceof Uint8Array) || v.length === 0) fail(name, 'every entry must be non-empty binary');
      return;
    case 'leaf-list': {
      if (!Array.isArray(value)) fail(name, 'must be a list');
      const seen = new Set<string | number>();
      for (const v of value) {
        const ok = (typeof v === 'string' && v.length > 0) || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
        if (!ok) fail(name, `entries must be extension names or SIDs, got ${JSON.stringify(v)}`);
        if (seen.has(v)) fail(name, `duplicate entry ${JSON.stringify(v)}`);
        seen.add(v);
      }
      return;
    }
  }
}

function checkBinary(def: LeafDef, b: Uint8Array, content: boolean): void {
  if (def.prop !== 'nonce' && !content) return;
  switch (def.prop) {
    case 'nonce':
      if (b.length < NONCE_MIN_BYTES || b.length > NONCE_MAX_BYTES) {
        fail(def.yang, `must be ${NONCE_MIN_BYTES}..${NONCE_MAX_BYTES} bytes, got ${b.length}`);
      }
      return;
    case 'pinnedDomainPubkSha256':
    case 'proximityRegistrarPubkSha256':
      if (b.length !== SHA256_BYTES) fail(def.yang, `must be a ${SHA256_BYTES}-byte SHA-256 value, got ${b.length} bytes`);
      return;
    case 'idevidIssuer':
      if (!isIdevidIssuerForm(b)) fail(def.yang, 'must be the AKI extnValue (04 len 30 …) or its bare SEQUENCE');
      return;
    case 'manufacturerProprietary':
      return;
    default:
      if (b.length === 0) fail(def.yang, 'must not be empty');
  }
}

/** Checks every property of `data` against the module of `kind` (see checkLeafValue); serial-number is mandatory. */
export function checkLeaves(kind: VoucherKind, data: unknown, content = true): void {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new VoucherValidationError(`${TOP_MEMBER[kind]} must be an object`);
  }
  for (const [prop, value] of Object.entries(data)) {
    if (value === undefined) continue;
    const def = leafByProp(kind, prop);
    if (!def) {
      const other = LEAVES.find((l) => l.prop === prop);
      fail(other?.yang ?? prop, `not a leaf of ${TOP_MEMBER[kind]}`);
    }
    checkLeafValue(def, value, content);
  }
  if ((data as VoucherLeaves).serialNumber === undefined) fail('serial-number', 'is mandatory');
}

const PROXIMITY_LEAVES = ['proximityRegistrarCert', 'proximityRegistrarPubk', 'proximityRegistrarPubkSha256'] as const;
const PIN_LEAVES = ['pinnedDomainCert', 'pinnedDomainPubk', 'pinnedDomainPubkSha256'] as const;

// Module-level rather than closures in validateVoucherData: tsx (keepNames) wraps every closure
// created per call in a __name() call, measurable on the voucher path.
function requireLeaf(kind: VoucherKind, d: VoucherRequest, p: keyof VoucherRequest, why: string): void {
  if (d[p] === undefined) fail(leafByProp(kind, p)!.yang, `is required in ${why}`);
}

function forbidLeaf(kind: VoucherKind, d: VoucherRequest, p: keyof VoucherRequest, why: string): void {
  if (d[p] !== undefined) fail(leafByProp(kind, p)!.yang, `must not be present in ${why}`);
}

/** Validates `data` as the given message (digest §5.3 table), throwing a VoucherValidationError naming the leaf. */
export function validateVoucherData(data: VoucherLeaves | VoucherRequest, role: MessageRole, opts: ValidateOptions = {}): void {
  const kind: VoucherKind = role === 'voucher' ? 'voucher' : 'voucher-request';
  checkLeaves(kind, data);
  const emit = opts.flavour === 'emit';
  const d = data as VoucherRequest;
  const has = (p: keyof VoucherRequest): boolean => d[p] !== undefined;
  const need = (p: keyof VoucherRequest, why: string): void => requireLeaf(kind, d, p, why);
  const forbid = (p: keyof VoucherRequest, why: string): void => forbidLeaf(kind, d, p, why);

  if (role === 'voucher') {
    if (!PIN_LEAVES.some(has)) fail('pinned-domain-cert', 'a voucher needs a pin (pinned-domain-cert, -pubk or -pubk-sha256)');
    if (!has('nonce') && !has('expiresOn')) fail('expires-on', 'a nonceless voucher needs expires-on');
    if (has('nonce') && has('expiresOn') && (emit || opts.strictExclusive)) {
      fail('expires-on', 'must not be combined with nonce (RFC 8366 exclusivity)');
    }
    if (has('lastRenewalDate') && !has('expiresOn')) fail('last-renewal-date', 'requires expires-on');
    if (emit) {
      need('createdOn', 'a voucher we emit');
      need('assertion', 'a voucher we emit');
    }
    return;
  }

  const prm = d.assertion === 'agent-proximity';
  if (role === 'pvr') {
    need('nonce', 'a pledge voucher-request');
    if (d.assertion !== undefined && d.assertion !== 'proximity' && !prm) {
      fail('assertion', `a pledge voucher-request asserts proximity or agent-proximity, not ${d.assertion}`);
    }
    if (prm) {
      need('agentProvidedProximityRegistrarCert', 'a PRM pledge voucher-request');
      need('agentSignedData', 'a PRM pledge voucher-request');
      need('createdOn', 'a PRM pledge voucher-request');
    } else if (!PROXIMITY_LEAVES.some(has)) {
      fail('proximity-registrar-cert', 'a pledge voucher-request needs proximity-registrar-cert, -pubk or -pubk-sha256');
    }
    if (emit) {
      need('assertion', 'a pledge voucher-request we emit');
      forbid('priorSignedVoucherRequest', 'a pledge voucher-request');
    }
  } else {
    forbid('proximityRegistrarCert', 'a registrar voucher-request');
    if (emit) {
      need('idevidIssuer', 'a registrar voucher-request we emit');
      if (prm) {
        for (const p of ['createdOn', 'nonce', 'priorSignedVoucherRequest', 'agentSignCert'] as const) {
          need(p, 'a PRM registrar voucher-request');
        }
      }
    }
  }
  if (emit) {
    // Requests have no use for pins, and these two leaves are meaningless in a request (§5.2).
    for (const p of [...PIN_LEAVES, 'lastRenewalDate', 'domainCertRevocationChecks'] as const) forbid(p, 'a voucher-request');
  }
}
