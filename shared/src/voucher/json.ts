/**
 * RFC 7951 JSON encoding of vouchers and voucher-requests (digest §5, §11 #15–#18).
 *
 * Output: compact UTF-8 JSON, top member "ietf-voucher:voucher" / "ietf-voucher-request:voucher",
 * binary as standard padded base64, assertion as the enum name, dates as given,
 * agent-sign-cert as a JSON array of base64 certificates (PRM refinement, §11 #16).
 * Input: strict UTF-8, size and depth limits, duplicate member names rejected, both base64
 * alphabets padded or not, the nonce string kept verbatim (§11 #18).
 */
import { MalformedError, SizeLimitError, VoucherValidationError } from '../errors.ts';
import type { DecodedVoucher, DecodeOptions, VoucherKind, VoucherLeaves, VoucherRequest } from './model.ts';
import { EXTENSION_MEMBER_PREFIX, LEGACY_PRM_TOP_MEMBER, TOP_MEMBER, leafByYang, leavesFor, type LeafDef } from './leaves.ts';
import { decodeBase64, encodeBase64 } from './base64.ts';
import { checkLeaves } from './validate.ts';

export const JSON_DEFAULT_MAX_BYTES = 64 * 1024;
export const JSON_DEFAULT_MAX_DEPTH = 16;

export interface JsonLimits {
  maxBytes?: number;
  maxDepth?: number;
}

export interface JsonEncodeOptions {
  /** The nonce exactly as received (MASA echo, §11 #18); must decode to `data.nonce`. */
  nonceText?: string;
  /** Extension data keyed by module name; each name must be listed in `data.extensions`. */
  extensionData?: ReadonlyMap<string | number, unknown>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Parses UTF-8 JSON with limits. Why a pre-scan: JSON.parse silently keeps the last of
 * duplicate member names (two `nonce` members must not be resolved silently) and has no depth limit.
 */
export function parseJsonStrict(bytes: Uint8Array, limits: JsonLimits = {}): unknown {
  const maxBytes = limits.maxBytes ?? JSON_DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) throw new SizeLimitError(maxBytes, bytes.length);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (e) {
    throw new MalformedError('JSON input is not valid UTF-8', { cause: e });
  }
  scanJson(text, limits.maxDepth ?? JSON_DEFAULT_MAX_DEPTH);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MalformedError(`invalid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Depth and duplicate-member scan. Syntax errors are left for JSON.parse to report. Strings are
 * skipped with indexOf (a voucher-request is mostly one long base64 string); member names are
 * decoded with JSON.parse only when they contain an escape.
 */
function scanJson(text: string, maxDepth: number): void {
  const stack: Array<Set<string> | null> = []; // Set of member names for objects, null for arrays
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // "
      let j = i + 1;
      for (;;) { // the closing quote: one not preceded by an odd run of backslashes
        j = text.indexOf('"', j);
        if (j < 0) return; // unterminated string
        let k = j - 1;
        while (k > i && text.charCodeAt(k) === 0x5c) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j++;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        let name = text.slice(i + 1, j);
        if (name.includes('\\')) {
          try { name = JSON.parse(text.slice(i, j + 1)) as string; } catch { return; }
        }
        if (top.has(name)) throw new MalformedError(`duplicate JSON member ${JSON.stringify(name)}`);
        top.add(name);
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (stack.length >= maxDepth) throw new MalformedError(`JSON nested deeper than ${maxDepth}`);
      stack.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) { // ,
      expectKey = stack[stack.length - 1] != null;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Which kind a top-level member name denotes under the given options. */
function topKind(name: string, opts: DecodeOptions): VoucherKind | undefined {
  if (name === TOP_MEMBER['voucher-request']) return 'voucher-request';
  if (name === TOP_MEMBER.voucher) return opts.legacyNames && opts.kind === 'voucher-request' ? 'voucher-request' : 'voucher';
  if (name === LEGACY_PRM_TOP_MEMBER && opts.legacyNames) return 'voucher-request';
  return undefined;
}

function jsonBytes(def: LeafDef, s: unknown): Uint8Array {
  if (typeof s !== 'string') throw new VoucherValidationError('must be a base64 string', def.yang);
  const b = decodeBase64(s);
  if (!b) throw new VoucherValidationError('is not valid base64', def.yang);
  return b;
}

function fromJson(def: LeafDef, v: unknown): unknown {
  switch (def.type) {
    case 'binary': return jsonBytes(def, v);
    // PRM: JSON array of base64 certificates; the YANG `binary` form (one string) is accepted too.
    case 'binary-list': return Array.isArray(v) ? v.map((s) => jsonBytes(def, s)) : [jsonBytes(def, v)];
    default: return v; // strings, dates, enum names, booleans, leaf-lists: checkLeaves checks the type
  }
}

/** Decodes RFC 7951 voucher JSON. Leaf types are always checked; message rules are validateVoucherData's job. */
export function decodeVoucherJson<T extends VoucherLeaves = VoucherRequest>(bytes: Uint8Array, opts: DecodeOptions): DecodedVoucher<T> {
  const root = parseJsonStrict(bytes, opts);
  if (!isPlainObject(root)) throw new MalformedError('voucher JSON must be an object');
  const unknown: string[] = [];
  let kind: VoucherKind | undefined;
  let inner: unknown;
  let topName = '';
  for (const [name, v] of Object.entries(root)) {
    const k = topKind(name, opts);
    if (k === undefined) { unknown.push(name); continue; }
    if (kind !== undefined) throw new MalformedError('more than one voucher container in the JSON object');
    kind = k;
    inner = v;
    topName = name;
  }
  if (kind === undefined) {
    const hint = Object.hasOwn(root, LEGACY_PRM_TOP_MEMBER) ? ` (${LEGACY_PRM_TOP_MEMBER} needs legacyNames)` : '';
    throw new VoucherValidationError(`no ${TOP_MEMBER.voucher} or ${TOP_MEMBER['voucher-request']} member${hint}`);
  }
  if (opts.kind !== undefined && kind !== opts.kind) {
    throw new VoucherValidationError(`expected ${TOP_MEMBER[opts.kind]}`, topName);
  }
  if (!isPlainObject(inner)) throw new VoucherValidationError('must be an object', topName);

  const data: Record<string, unknown> = {};
  const extensions = new Map<string | number, unknown>();
  const pendingExt: Array<[string, unknown]> = [];
  let nonceText: string | undefined;
  for (const [name, v] of Object.entries(inner)) {
    const def = leafByYang(kind, name);
    if (def) {
      data[def.prop] = fromJson(def, v);
      if (def.prop === 'nonce') nonceText = v as string;
    } else if (name.startsWith(EXTENSION_MEMBER_PREFIX)) {
      pendingExt.push([name, v]);
    } else {
      unknown.push(name);
    }
  }
  checkLeaves(kind, data, false);
  const listed = (data as unknown as VoucherLeaves).extensions ?? [];
  for (const [name, v] of pendingExt) {
    const module = name.slice(EXTENSION_MEMBER_PREFIX.length);
    if (listed.includes(module)) extensions.set(module, v);
    else unknown.push(name);
  }
  if (opts.strict && unknown.length > 0) {
    throw new VoucherValidationError(`unknown member${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}`, unknown[0]);
  }
  const out: DecodedVoucher<T> = { kind, data: data as unknown as T, unknown };
  if (nonceText !== undefined) out.nonceText = nonceText;
  if (extensions.size > 0) out.extensionData = extensions;
  return out;
}

// Leaf order per kind, computed once (leavesFor filters and sorts the table on each call).
const ENCODE_ORDER: Readonly<Record<VoucherKind, readonly LeafDef[]>> = { voucher: leavesFor('voucher'), 'voucher-request': leavesFor('voucher-request') };

/** Encodes voucher data as RFC 7951 JSON (UTF-8 bytes). */
export function encodeVoucherJson(kind: VoucherKind, data: VoucherLeaves | VoucherRequest, opts: JsonEncodeOptions = {}): Uint8Array {
  checkLeaves(kind, data);
  const d = data as unknown as Record<string, unknown>;
  const inner: Record<string, unknown> = {};
  for (const def of ENCODE_ORDER[kind]) {
    const v = d[def.prop];
    if (v === undefined) continue;
    if (def.type === 'binary') inner[def.yang] = encodeBase64(v as Uint8Array);
    else if (def.type === 'binary-list') inner[def.yang] = (v as Uint8Array[]).map(encodeBase64);
    // RFC 7951 §6.1: uint64 members of the union are JSON strings.
    else if (def.type === 'leaf-list') inner[def.yang] = (v as Array<string | number>).map(String);
    else inner[def.yang] = v;
  }
  if (opts.nonceText !== undefined) {
    const fromText = decodeBase64(opts.nonceText);
    const nonce = data.nonce;
    if (!nonce || !fromText || Buffer.compare(fromText, nonce) !== 0) {
      throw new VoucherValidationError('nonceText does not encode the nonce bytes', 'nonce');
    }
    inner['nonce'] = opts.nonceText;
  }
  for (const [module, v] of opts.extensionData ?? []) {
    if (typeof module !== 'string' || !(data.extensions ?? []).includes(module)) {
      throw new VoucherValidationError(`extension data for ${String(module)} not listed in extensions`, 'extensions');
    }
    inner[EXTENSION_MEMBER_PREFIX + module] = v;
  }
  return utf8Encoder.encode(JSON.stringify({ [TOP_MEMBER[kind]]: inner }));
}
