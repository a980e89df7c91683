/**
 * RFC 7512 PKCS#11 URI parser and formatter.
 *
 * Written here rather than taken from npm: no maintained Node package parses RFC 7512, and the
 * grammar is small. Parsing is strict (fail closed): an unknown standard attribute, a repeated
 * attribute, a bad percent-escape or a character outside the RFC's sets is an error, because a
 * silently ignored attribute could select a different key than the operator meant.
 */
import { MalformedError } from '../../errors.ts';

export type Pkcs11ObjectType = 'public' | 'private' | 'cert' | 'secret-key' | 'data';

export interface Pkcs11Uri {
  // token selection
  token?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
  // slot selection
  slotDescription?: string;
  slotManufacturer?: string;
  slotId?: number;
  // library selection
  libraryManufacturer?: string;
  libraryDescription?: string;
  libraryVersion?: { major: number; minor: number };
  // object selection
  object?: string;
  type?: Pkcs11ObjectType;
  /** CKA_ID bytes. */
  id?: Uint8Array;
  // query attributes
  pinSource?: string;
  pinValue?: string;
  moduleName?: string;
  modulePath?: string;
  /** Vendor attributes (`x-…`), kept verbatim (decoded). */
  vendor: Record<string, string>;
}

const PATH_ATTRS = {
  'token': 'token', 'manufacturer': 'manufacturer', 'serial': 'serial', 'model': 'model',
  'slot-description': 'slotDescription', 'slot-manufacturer': 'slotManufacturer', 'slot-id': 'slotId',
  'library-manufacturer': 'libraryManufacturer', 'library-description': 'libraryDescription',
  'library-version': 'libraryVersion', 'object': 'object', 'type': 'type', 'id': 'id',
} as const;
const QUERY_ATTRS = {
  'pin-source': 'pinSource', 'pin-value': 'pinValue', 'module-name': 'moduleName', 'module-path': 'modulePath',
} as const;
const OBJECT_TYPES: readonly string[] = ['public', 'private', 'cert', 'secret-key', 'data'];

// RFC 7512 §2.3: pk11-pchar = unreserved / pk11-res-avail / pct-encoded (path also allows '&');
// pk11-qchar = unreserved / pk11-res-avail / pct-encoded (query also allows '/', '?', '|').
const UNRESERVED = 'A-Za-z0-9\\-._~';
const RES_AVAIL = ':\\[\\]@!$\'()*+,=';
const PATH_VALUE = new RegExp(`^(?:[${UNRESERVED}${RES_AVAIL}&]|%[0-9A-Fa-f]{2})*$`);
const QUERY_VALUE = new RegExp(`^(?:[${UNRESERVED}${RES_AVAIL}/?|]|%[0-9A-Fa-f]{2})*$`);
const ATTR_NAME = /^(?:[a-z][a-z0-9-]*)$/;

function bad(uri: string, why: string): MalformedError {
  // The URI may carry a pin-value: never echo it back.
  return new MalformedError(`invalid PKCS#11 URI: ${why}`, { detail: { uri: redactPkcs11Uri(uri) } });
}

function pctDecodeBytes(value: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') { out.push(parseInt(value.slice(i + 1, i + 3), 16)); i += 2; } else out.push(value.charCodeAt(i));
  }
  return Uint8Array.from(out);
}

function pctDecodeText(value: string, uri: string, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(pctDecodeBytes(value));
  } catch {
    throw bad(uri, `attribute '${name}' is not valid UTF-8 after percent-decoding`);
  }
}

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!/^pkcs11:/i.test(uri)) throw bad(uri, "scheme 'pkcs11:' expected");
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);
  const out: Pkcs11Uri = { vendor: {} };
  const seen = new Set<string>();
  const target = out as unknown as Record<string, unknown>;

  const take = (part: string, sep: string, valueRe: RegExp, known: Record<string, string>, where: string): void => {
    if (part === '') return;
    for (const item of part.split(sep)) {
      const eq = item.indexOf('=');
      if (eq <= 0) throw bad(uri, `${where} attribute without a name or '=': '${item.slice(0, 40)}'`);
      const name = item.slice(0, eq).toLowerCase();
      const raw = item.slice(eq + 1);
      if (!ATTR_NAME.test(name)) throw bad(uri, `bad attribute name '${name}'`);
      if (!valueRe.test(raw)) throw bad(uri, `attribute '${name}' has characters that must be percent-encoded`);
      if (seen.has(name)) throw bad(uri, `attribute '${name}' repeated`);
      seen.add(name);
      if (name.startsWith('x-')) { out.vendor[name] = pctDecodeText(raw, uri, name); continue; }
      const prop = known[name];
      if (!prop) throw bad(uri, `unknown ${where} attribute '${name}'`);
      if (name === 'id') { out.id = pctDecodeBytes(raw); continue; }
      const text = pctDecodeText(raw, uri, name);
      if (name === 'slot-id') {
        if (!/^[0-9]{1,20}$/.test(text)) throw bad(uri, 'slot-id must be a decimal number');
        out.slotId = Number(text);
      } else if (name === 'library-version') {
        const m = /^([0-9]{1,5})(?:\.([0-9]{1,5}))?$/.exec(text);
        if (!m) throw bad(uri, "library-version must be 'M' or 'M.m'");
        out.libraryVersion = { major: Number(m[1]), minor: Number(m[2] ?? 0) };
      } else if (name === 'type') {
        if (!OBJECT_TYPES.includes(text)) throw bad(uri, `type must be one of ${OBJECT_TYPES.join(', ')}`);
        out.type = text as Pkcs11ObjectType;
      } else {
        target[prop] = text;
      }
    }
  };
  take(pathPart, ';', PATH_VALUE, PATH_ATTRS, 'path');
  take(queryPart, '&', QUERY_VALUE, QUERY_ATTRS, 'query');
  if (out.pinSource !== undefined && out.pinValue !== undefined) throw bad(uri, 'pin-source and pin-value are mutually exclusive');
  return out;
}

const KEEP_PATH = new RegExp(`[${UNRESERVED}${RES_AVAIL}&]`);
const KEEP_QUERY = new RegExp(`[${UNRESERVED}${RES_AVAIL}/?|]`);

function pctEncode(bytes: Uint8Array, keep: RegExp): string {
  let s = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += b < 0x80 && keep.test(c) ? c : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return s;
}

/** Formats a URI (canonical attribute order; `id` always fully percent-encoded as RFC 7512 recommends). */
export function formatPkcs11Uri(u: Omit<Pkcs11Uri, 'vendor'> & { vendor?: Record<string, string> }): string {
  const enc = new TextEncoder();
  const path: string[] = [];
  const text = (name: string, v: string | undefined): void => { if (v !== undefined) path.push(`${name}=${pctEncode(enc.encode(v), KEEP_PATH)}`); };
  text('token', u.token); text('manufacturer', u.manufacturer); text('serial', u.serial); text('model', u.model);
  text('slot-description', u.slotDescription); text('slot-manufacturer', u.slotManufacturer);
  if (u.slotId !== undefined) path.push(`slot-id=${u.slotId}`);
  text('library-manufacturer', u.libraryManufacturer); text('library-description', u.libraryDescription);
  if (u.libraryVersion) path.push(`library-version=${u.libraryVersion.major}.${u.libraryVersion.minor}`);
  text('object', u.object); text('type', u.type);
  if (u.id) path.push(`id=${[...u.id].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')}`);
  for (const [k, v] of Object.entries(u.vendor ?? {})) text(k, v);
  const query: string[] = [];
  const qtext = (name: string, v: string | undefined): void => { if (v !== undefined) query.push(`${name}=${pctEncode(enc.encode(v), KEEP_QUERY)}`); };
  qtext('pin-source', u.pinSource); qtext('pin-value', u.pinValue); qtext('module-name', u.moduleName); qtext('module-path', u.modulePath);
  return `pkcs11:${path.join(';')}${query.length ? `?${query.join('&')}` : ''}`;
}

/** The URI with any pin-value replaced, for logs and error messages. */
export function redactPkcs11Uri(uri: string): string {
  return uri.replace(/([?&]pin-value=)[^&]*/gi, '$1***');
}
