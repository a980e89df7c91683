/**
 * Strict CoAP message codec (RFC 7252 §3) for the datagrams that reach the registrar's CoAP layer.
 * Our own rather than `coap-packet`'s parse because that one is lenient in ways that matter here:
 * it accepts reserved token lengths (9-12, then copied into the answer), option values and
 * extended lengths that run past the datagram, and a payload marker with no payload. Each of
 * those is a message format error, which a CON message must answer with a Reset (RFC 7252 §4.2).
 */

export const TYPE = { CON: 0, NON: 1, ACK: 2, RST: 3 } as const;

/** Option numbers the registrar's CoAP layer looks at (RFC 7252 §12.2, RFC 7959, RFC 7641). */
export const OPTION = {
  uriHost: 3, observe: 6, uriPort: 7, uriPath: 11, contentFormat: 12, uriQuery: 15, accept: 17,
  block2: 23, block1: 27, size2: 28, proxyUri: 35, proxyScheme: 39, size1: 60,
} as const;

export interface CoapOption { number: number; value: Buffer }

export interface CoapMessage {
  type: number;
  /** The raw code byte: class << 5 | detail. */
  code: number;
  messageId: number;
  token: Buffer;
  /** In ascending option-number order, as on the wire. */
  options: CoapOption[];
  payload: Buffer;
}

export type ParseResult =
  | { ok: true; message: CoapMessage }
  /** `header` is present when type and message ID are readable (a CON can then be Reset). */
  | { ok: false; reason: string; header?: { type: number; messageId: number } };

/** Largest option number (16-bit, RFC 7252 §3.1): a delta sum beyond it is a format error. */
const MAX_OPTION = 0xffff;

export function parseMessage(b: Buffer): ParseResult {
  if (b.length < 4) return { ok: false, reason: 'shorter than the CoAP header' };
  // Unknown versions are silently ignored (RFC 7252 §3), so no header to Reset.
  if (b[0]! >> 6 !== 1) return { ok: false, reason: `version ${b[0]! >> 6}` };
  const header = { type: (b[0]! >> 4) & 3, messageId: b.readUInt16BE(2) };
  const fail = (reason: string): ParseResult => ({ ok: false, reason, header });
  const tkl = b[0]! & 0x0f;
  // 9-15 are reserved (RFC 7252 §3); RFC 8974 extended tokens (13, 14) are not supported, so they are too.
  if (tkl > 8) return fail(`reserved token length ${tkl}`);
  if (b.length < 4 + tkl) return fail('token runs past the datagram');
  const code = b[1]!;
  const token = b.subarray(4, 4 + tkl);
  // An Empty message is exactly the 4-byte header (RFC 7252 §4.1).
  if (code === 0) {
    if (b.length !== 4) return fail('Empty message with a token, options or payload');
    return { ok: true, message: { ...header, code, token, options: [], payload: Buffer.alloc(0) } };
  }
  const options: CoapOption[] = [];
  let i = 4 + tkl;
  let number = 0;
  let payload: Buffer = Buffer.alloc(0);
  while (i < b.length) {
    const byte = b[i++]!;
    if (byte === 0xff) {
      if (i === b.length) return fail('payload marker without payload');
      payload = b.subarray(i);
      break;
    }
    const ext = (nibble: number): number | undefined => {
      if (nibble < 13) return nibble;
      if (nibble === 13 && i < b.length) return b[i++]! + 13;
      if (nibble === 14 && i + 1 < b.length) { const v = b.readUInt16BE(i) + 269; i += 2; return v; }
      return undefined; // 15 (reserved) or the extension runs past the datagram
    };
    const delta = ext(byte >> 4);
    const length = ext(byte & 0x0f);
    if (delta === undefined) return fail('bad option delta');
    if (length === undefined) return fail('bad option length');
    number += delta;
    if (number > MAX_OPTION) return fail('option number over 65535');
    if (i + length > b.length) return fail('option value runs past the datagram');
    options.push({ number, value: b.subarray(i, i + length) });
    i += length;
  }
  return { ok: true, message: { ...header, code, token, options, payload } };
}

function nibble(n: number): { n: number; ext: Buffer } {
  if (n < 13) return { n, ext: Buffer.alloc(0) };
  if (n < 269) return { n: 13, ext: Buffer.of(n - 13) };
  const e = Buffer.alloc(2);
  e.writeUInt16BE(n - 269);
  return { n: 14, ext: e };
}

export function encodeMessage(m: CoapMessage): Buffer {
  if (m.token.length > 8) throw new RangeError('token over 8 bytes');
  const head = Buffer.alloc(4);
  head[0] = (1 << 6) | (m.type << 4) | m.token.length;
  head[1] = m.code;
  head.writeUInt16BE(m.messageId & 0xffff, 2);
  const parts: Buffer[] = [head, m.token];
  let prev = 0;
  for (const o of [...m.options].sort((a, b) => a.number - b.number)) {
    const d = nibble(o.number - prev);
    const l = nibble(o.value.length);
    parts.push(Buffer.of((d.n << 4) | l.n), d.ext, l.ext, o.value);
    prev = o.number;
  }
  if (m.payload.length > 0) parts.push(Buffer.of(0xff), m.payload);
  return Buffer.concat(parts);
}

/** "4.02" → the code byte. */
export function codeByte(code: string): number {
  const [cls, detail] = code.split('.').map(Number);
  return (cls! << 5) | detail!;
}

/** Minimal big-endian unsigned integer (CoAP uint option format, RFC 7252 §3.2). */
export function uintOption(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from(bytes);
}

export function readUint(value: Buffer): number {
  return value.length === 0 ? 0 : value.readUIntBE(0, Math.min(value.length, 6));
}

export interface BlockValue { num: number; more: boolean; szx: number }

/** A Block1/Block2 option value (RFC 7959 §2.2); undefined when longer than 3 bytes. */
export function parseBlock(value: Buffer): BlockValue | undefined {
  if (value.length > 3) return undefined;
  const v = readUint(value);
  return { num: v >> 4, more: (v & 8) !== 0, szx: v & 7 };
}

export function blockOption(b: BlockValue): Buffer {
  return uintOption(b.num * 16 + (b.more ? 8 : 0) + b.szx);
}
