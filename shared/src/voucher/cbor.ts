/**
 * YANG-CBOR (RFC 9254) encoding of vouchers and voucher-requests with the 8366bis SIDs
 * (digest §5.4, §11 #9/#10).
 *
 * Top level: a one-entry map whose key is the container SID (2451 / 2501) or its name.
 * Inside: SID deltas (default), absolute SIDs as tag 47, or leaf names — mixed freely on input.
 * Extension data: key 47(<module SID>) (or a name), allowed only when listed in `extensions`.
 * Pre-2019 experimental SIDs (1001xxx) are always rejected, never half-parsed.
 */
import { MalformedError, VoucherValidationError } from '../errors.ts';
import { ASSERTIONS, type Assertion, type DecodedVoucher, type DecodeOptions, type VoucherKind, type VoucherLeaves,
  type VoucherRequest } from './model.ts';
import { EXTENSION_MEMBER_PREFIX, LEGACY_PRM_TOP_MEMBER, TOP_MEMBER, TOP_SID, deltaOf, isHistoricalSid, leafByDelta,
  leafBySid, leafByYang, leavesFor, type LeafDef } from './leaves.ts';
import { Tag, cborDecode, cborEncode } from './cbor-codec.ts';
import { checkLeaves } from './validate.ts';

/** RFC 9254 §3.2: tag for an absolute SID where a delta would be expected. */
export const SID_TAG = 47;

export interface CborEncodeOptions {
  /** 'sid' (default): delta keys under an absolute-SID top key. 'names': leaf names (RVRs to a MASA may use these). */
  keys?: 'sid' | 'names';
  /** Extension data keyed by module SID (written as key 47(sid)) or module name; must be listed in `extensions`. */
  extensionData?: ReadonlyMap<string | number, unknown>;
}

/** Encodes voucher data as YANG-CBOR. Leaves are written in SID order. */
export function encodeVoucherCbor(kind: VoucherKind, data: VoucherLeaves | VoucherRequest, opts: CborEncodeOptions = {}): Uint8Array {
  checkLeaves(kind, data);
  const names = opts.keys === 'names';
  const d = data as unknown as Record<string, unknown>;
  const inner = new Map<unknown, unknown>();
  for (const def of leavesFor(kind)) {
    const v = d[def.prop];
    if (v === undefined) continue;
    // RFC 9254 §6.6: an enumeration is its integer value whatever the key style.
    const value = def.type === 'enum' ? ASSERTIONS.indexOf(v as Assertion) : v;
    inner.set(names ? def.yang : deltaOf(kind, def), value);
  }
  for (const [module, v] of opts.extensionData ?? []) {
    if (!(data.extensions ?? []).includes(module)) {
      throw new VoucherValidationError(`extension data for ${String(module)} not listed in extensions`, 'extensions');
    }
    inner.set(typeof module === 'number' ? new Tag(module, SID_TAG) : module, v);
  }
  return cborEncode(new Map([[names ? TOP_MEMBER[kind] : TOP_SID[kind], inner]]));
}

function historical(sid: number | bigint): never {
  throw new VoucherValidationError(
    `SID ${sid} is from the obsolete experimental range 1001xxx; only the 8366bis SIDs are supported`, `SID ${sid}`);
}

/** Top-level key → kind, honouring the legacy options. */
function topKind(key: unknown, opts: DecodeOptions): VoucherKind | undefined {
  const k = key instanceof Tag && key.tag === SID_TAG ? key.value : key;
  if (typeof k === 'number' || typeof k === 'bigint') {
    if (isHistoricalSid(k)) historical(k);
    if (k === TOP_SID['voucher-request']) return 'voucher-request';
    // SID 2451 always means a voucher: deltas are relative to the module, so no legacy reading.
    if (k === TOP_SID.voucher) return 'voucher';
    return undefined;
  }
  if (k === TOP_MEMBER['voucher-request']) return 'voucher-request';
  if (k === TOP_MEMBER.voucher) return opts.legacyNames && opts.kind === 'voucher-request' ? 'voucher-request' : 'voucher';
  if (k === LEGACY_PRM_TOP_MEMBER && opts.legacyNames) return 'voucher-request';
  return undefined;
}

function keyLabel(key: unknown): string {
  if (key instanceof Tag) return `${key.tag}(${keyLabel(key.value)})`;
  return typeof key === 'string' ? JSON.stringify(key) : String(key);
}

function fromCbor(def: LeafDef, v: unknown): unknown {
  switch (def.type) {
    case 'enum':
      // Integer per RFC 9254; the enum name is accepted too (name-keyed peers).
      if (typeof v === 'number') {
        if (!Number.isInteger(v) || v < 0 || v >= ASSERTIONS.length) throw new VoucherValidationError(`unknown value ${v}`, def.yang);
        return ASSERTIONS[v];
      }
      return v;
    case 'binary-list':
      return v instanceof Uint8Array ? [v] : v; // the YANG `binary` form (one bstr) is accepted too
    case 'leaf-list':
      if (Array.isArray(v) && v.some((x) => typeof x === 'bigint')) {
        throw new VoucherValidationError('extension SIDs beyond 2^53 are not supported', def.yang);
      }
      return v;
    default:
      return v; // checkLeaves checks the type
  }
}

/** Decodes YANG-CBOR voucher bytes. Leaf types are always checked; message rules are validateVoucherData's job. */
export function decodeVoucherCbor<T extends VoucherLeaves = VoucherRequest>(bytes: Uint8Array, opts: DecodeOptions): DecodedVoucher<T> {
  const root = cborDecode(bytes, { maxBytes: opts.maxBytes, maxDepth: opts.maxDepth, allowedTags: [SID_TAG] });
  if (!(root instanceof Map)) throw new MalformedError('voucher CBOR must be a map');
  const unknown: string[] = [];
  let kind: VoucherKind | undefined;
  let inner: unknown;
  let topKey: unknown;
  for (const [key, v] of root) {
    const k = topKind(key, opts);
    if (k === undefined) { unknown.push(keyLabel(key)); continue; }
    if (kind !== undefined) throw new MalformedError('more than one voucher container in the CBOR map');
    kind = k;
    inner = v;
    topKey = key;
  }
  if (kind === undefined) {
    throw new VoucherValidationError(`no ${TOP_SID.voucher} (${TOP_MEMBER.voucher}) or ${TOP_SID['voucher-request']} ` +
      `(${TOP_MEMBER['voucher-request']}) key; found ${unknown.join(', ') || 'none'}`);
  }
  const topName = keyLabel(topKey);
  if (opts.kind !== undefined && kind !== opts.kind) throw new VoucherValidationError(`expected ${TOP_MEMBER[opts.kind]}`, topName);
  if (!(inner instanceof Map)) throw new VoucherValidationError('must be a map', topName);

  const data: Record<string, unknown> = {};
  const pendingExt: Array<[unknown, string | number, unknown]> = [];
  for (const [key, v] of inner) {
    let def: LeafDef | undefined;
    let extId: string | number | undefined; // candidate extension module (SID or name)
    if (typeof key === 'number') {
      if (isHistoricalSid(key)) historical(key);
      def = leafByDelta(kind, key);
    } else if (typeof key === 'string') {
      def = leafByYang(kind, key);
      extId = key.startsWith(EXTENSION_MEMBER_PREFIX) ? key.slice(EXTENSION_MEMBER_PREFIX.length) : key;
    } else if (key instanceof Tag && key.tag === SID_TAG && (typeof key.value === 'number' || typeof key.value === 'bigint')) {
      if (isHistoricalSid(key.value)) historical(key.value);
      def = typeof key.value === 'number' ? leafBySid(kind, key.value) : undefined;
      extId = typeof key.value === 'number' ? key.value : String(key.value);
    }
    if (def) {
      // Delta, absolute SID and name all denote the same leaf: a second spelling is a duplicate.
      if (data[def.prop] !== undefined) throw new VoucherValidationError('appears more than once (different key forms)', def.yang);
      data[def.prop] = fromCbor(def, v);
    } else if (extId !== undefined) {
      pendingExt.push([key, extId, v]);
    } else {
      unknown.push(keyLabel(key));
    }
  }
  checkLeaves(kind, data, false);
  const listed: Array<string | number> = (data as unknown as VoucherLeaves).extensions ?? [];
  const extensions = new Map<string | number, unknown>();
  for (const [key, id, v] of pendingExt) {
    if (listed.includes(id)) extensions.set(id, v);
    else unknown.push(keyLabel(key));
  }
  if (opts.strict && unknown.length > 0) {
    throw new VoucherValidationError(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, unknown[0]);
  }
  const out: DecodedVoucher<T> = { kind, data: data as unknown as T, unknown };
  if (extensions.size > 0) out.extensionData = extensions;
  return out;
}
