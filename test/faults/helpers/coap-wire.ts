/**
 * CoAP messages byte by byte (RFC 7252 §3) for the hostile-input test. Written here rather than
 * taken from the `coap` / `coap-packet` packages because those refuse to produce what the test
 * must send: reserved option nibbles, token lengths over 8, options out of order, lengths that
 * run past the datagram. Nor from the registrar's own `registrar/src/coap/wire.ts`: its encoder
 * refuses the same malformed input, and a test oracle should not share the parser it attacks.
 * Decoding is just enough to classify the registrar's answers.
 */

export const TYPE = { CON: 0, NON: 1, ACK: 2, RST: 3 } as const;
export const OPT = { uriPath: 11, contentFormat: 12, abbrev: 13, uriQuery: 15, accept: 17, block2: 23, block1: 27, size1: 60 } as const;

export interface CoapOption { number: number; value: Buffer }

export interface CoapMessage {
  type: number;
  /** Code as class.detail, e.g. 0.02 = POST → [0, 2]. */
  code: [number, number];
  messageId: number;
  token: Buffer;
  options: CoapOption[];
  payload?: Buffer;
}

/** Minimal big-endian unsigned encoding (CoAP uint options). */
export function uint(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from(bytes);
}

/** Block option value (RFC 7959 §2.2): NUM, M, SZX. SZX 7 is reserved and allowed here on purpose. */
export function block(num: number, more: boolean, szx: number): Buffer {
  return uint(num * 16 + (more ? 8 : 0) + szx);
}

export function pathOptions(path: string): CoapOption[] {
  return path.split('/').filter(Boolean).map((s) => ({ number: OPT.uriPath, value: Buffer.from(s) }));
}

function nibble(n: number): { n: number; ext: Buffer } {
  if (n < 13) return { n, ext: Buffer.alloc(0) };
  if (n < 269) return { n: 13, ext: Buffer.of(n - 13) };
  const e = Buffer.alloc(2);
  e.writeUInt16BE(n - 269);
  return { n: 14, ext: e };
}

/** Encodes a well-formed message; options are sorted (stable) as the format requires. */
export function encode(m: CoapMessage): Buffer {
  const head = Buffer.alloc(4);
  head[0] = (1 << 6) | (m.type << 4) | m.token.length;
  head[1] = (m.code[0] << 5) | m.code[1];
  head.writeUInt16BE(m.messageId & 0xffff, 2);
  const parts: Buffer[] = [head, m.token];
  let prev = 0;
  for (const o of [...m.options].sort((a, b) => a.number - b.number)) {
    const d = nibble(o.number - prev);
    const l = nibble(o.value.length);
    parts.push(Buffer.of((d.n << 4) | l.n), d.ext, l.ext, o.value);
    prev = o.number;
  }
  if (m.payload && m.payload.length > 0) parts.push(Buffer.of(0xff), m.payload);
  return Buffer.concat(parts);
}

export interface Decoded { type: number; codeClass: number; codeDetail: number; code: string; messageId: number; token: Buffer; payload: Buffer; options: CoapOption[] }

/** Decodes an answer; undefined when it is not a valid CoAP message (itself a finding). */
export function decode(b: Buffer): Decoded | undefined {
  if (b.length < 4 || b[0]! >> 6 !== 1) return undefined;
  // Token length: 0-8, or RFC 8974 extended tokens (TKL 13: one more byte + 13; 14: two bytes + 269).
  let tkl = b[0]! & 0x0f;
  let at = 4;
  if (tkl === 13 && b.length > 4) { tkl = b[4]! + 13; at = 5; } else if (tkl === 14 && b.length > 5) { tkl = b.readUInt16BE(4) + 269; at = 6; }
  if ((tkl > 8 && at === 4) || b.length < at + tkl) return undefined;
  const codeClass = b[1]! >> 5;
  const codeDetail = b[1]! & 0x1f;
  let i = at + tkl;
  const options: CoapOption[] = [];
  let num = 0;
  let payload: Buffer = Buffer.alloc(0);
  while (i < b.length) {
    if (b[i] === 0xff) { payload = b.subarray(i + 1); break; }
    let d = b[i]! >> 4;
    let l = b[i]! & 0x0f;
    i++;
    const ext = (v: number): number | undefined => {
      if (v < 13) return v;
      if (v === 13 && i < b.length) return b[i++]! + 13;
      if (v === 14 && i + 1 < b.length) { const x = b.readUInt16BE(i) + 269; i += 2; return x; }
      return undefined;
    };
    const dd = ext(d);
    const ll = ext(l);
    if (dd === undefined || ll === undefined || i + ll > b.length) return undefined;
    d = dd; l = ll;
    num += d;
    options.push({ number: num, value: b.subarray(i, i + l) });
    i += l;
  }
  return { type: b[0]! >> 4 & 3, codeClass, codeDetail, code: `${codeClass}.${String(codeDetail).padStart(2, '0')}`, messageId: b.readUInt16BE(2),
    token: b.subarray(at, at + tkl), payload, options };
}
