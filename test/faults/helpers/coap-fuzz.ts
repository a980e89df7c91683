/**
 * Hostile CoAP traffic for the registrar's CoAPS listener: a DTLS session that sends raw CoAP
 * bytes (helpers/coap-wire.ts) and matches answers by token, and the seeded generator of
 * malformed requests. Well-formed requests (`expect: 'answer'`) must get an answer; garbage that
 * is not a valid CoAP message (`expect: 'any'`) may get none, an RST, or a 4.xx.
 */
import { COAP_CONTENT_FORMAT as CF } from '@brski/shared/media';
import { DtlsClient } from '../../../pledge-sim/src/coaps/dtls-client.ts';
import { block, decode, encode, OPT, pathOptions, TYPE, uint, type CoapOption, type Decoded } from './coap-wire.ts';
import { bitflip, randomBytes, splice, truncate, type Rng } from './mutate.ts';

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

/** One request: a single datagram, or a Block1 transfer (each block awaits its 2.31). */
export interface FuzzCase {
  family: string;
  /** What exactly was sent, for the report. */
  detail?: string;
  /** Codes accepted besides 4.xx (a GET resource may answer 2.05 to elective junk it ignores). */
  okCodes?: readonly string[];
  /** The signature of an open registrar defect (docs/reliability.md), tallied apart from other violations. */
  knownDefect?: 'block1-szx7' | 'critical-option-ignored' | 'block1-incomplete-silent' | 'fetch-silent' | 'core-query-500';
  expect: 'answer' | 'any';
  /** Raw datagram (token inside must be `token`), for single-datagram cases. */
  raw?: (token: Buffer, mid: number) => Buffer;
  /** Block1 transfer: blocks of `szx`, options per block. */
  transfer?: { options: CoapOption[]; payload: Buffer; szx: number; order?: 'normal' | 'skip' | 'reverse' };
  /** The base a mutated PVR came from (a 2.04 is benign only if the mutant still verifies to the same content). */
  pvrMutant?: Buffer;
  non?: boolean;
}

export interface Answer { code: string; type: number; payload: string }

/** A DTLS session speaking raw CoAP; reconnects when the registrar ends the session (e.g. proximity mismatch). */
export class FuzzSession {
  #dtls: DtlsClient | undefined;
  #connecting: Promise<DtlsClient> | undefined;
  readonly #waiters = new Map<string, (a: Answer) => void>();
  #mid = Math.floor(Math.random() * 60_000);
  /** Every answer seen, including unmatched ones (garbage we sent a token-less message for). */
  readonly seen: Answer[] = [];
  readonly undecodable: string[] = [];
  /** Answers carrying a reserved token length (9-12, RFC 8974 §2.1) copied from our garbage: their codes. */
  readonly reservedTkl: string[] = [];
  reconnects = 0;
  /** Why each DTLS session of this fuzzer ended (the registrar's disconnects, alerts). */
  readonly endings: string[] = [];

  constructor(private readonly connectOpts: Parameters<typeof DtlsClient.connect>[0]) {}

  async #session(): Promise<DtlsClient> {
    if (this.#dtls && !this.#dtls.closed) return this.#dtls;
    this.#connecting ??= DtlsClient.connect(this.connectOpts).then((d) => {
      if (this.#dtls) this.reconnects++;
      this.#dtls = d;
      this.#connecting = undefined;
      d.on('message', (m) => this.#onMessage(m));
      d.on('close', (reason) => this.endings.push(reason));
      return d;
    }, (e: unknown) => { this.#connecting = undefined; throw e; });
    return this.#connecting;
  }

  #onMessage(m: Buffer): void {
    const d: Decoded | undefined = decode(m);
    if (!d) {
      const tkl = m.length >= 2 ? m[0]! & 0x0f : 0;
      if (m.length >= 2 && m[0]! >> 6 === 1 && tkl >= 9 && tkl <= 12) this.reservedTkl.push(`${m[1]! >> 5}.${String(m[1]! & 0x1f).padStart(2, '0')}`);
      else this.undecodable.push(m.subarray(0, 24).toString('hex'));
      return;
    }
    if (d.type === TYPE.CON) {
      // A separate response: acknowledge it (empty ACK, same message ID) so the registrar stops resending.
      this.#send(encode({ type: TYPE.ACK, code: [0, 0], messageId: d.messageId, token: Buffer.alloc(0), options: [] })).catch(() => undefined);
    }
    if (d.codeClass === 0 && d.codeDetail === 0 && d.type === TYPE.ACK) return; // empty ACK: the answer follows separately
    const a: Answer = { code: d.code, type: d.type, payload: d.payload.toString('utf8').slice(0, 120) };
    this.seen.push(a);
    const w = this.#waiters.get(d.token.toString('hex'));
    if (w && d.token.length > 0) { this.#waiters.delete(d.token.toString('hex')); w(a); }
  }

  async #send(datagram: Buffer): Promise<void> { (await this.#session()).send(datagram); }

  nextMid(): number { this.#mid = (this.#mid + 1) & 0xffff; return this.#mid; }

  /**
   * Sends one datagram; resolves with the answer for `token`, or undefined after `timeoutMs`. A
   * confirmable message is retransmitted unchanged (same message ID: the server deduplicates) every
   * 1.5 s, as RFC 7252 §4.2 has clients do, so a datagram lost on a busy loopback is not an "unanswered".
   */
  async exchange(datagram: Buffer, token: Buffer, timeoutMs: number): Promise<Answer | undefined> {
    const key = token.toString('hex');
    const confirmable = datagram.length >= 1 && ((datagram[0]! >> 4) & 3) === TYPE.CON;
    let resend: NodeJS.Timeout | undefined;
    const answer = new Promise<Answer | undefined>((resolve) => {
      const t = setTimeout(() => { clearInterval(resend); this.#waiters.delete(key); resolve(undefined); }, timeoutMs);
      if (token.length > 0) this.#waiters.set(key, (a) => { clearTimeout(t); clearInterval(resend); resolve(a); });
    });
    await this.#send(datagram);
    if (confirmable && timeoutMs > 1_500) resend = setInterval(() => { this.#send(datagram).catch(() => undefined); }, 1_500);
    return answer;
  }

  close(): void { this.#dtls?.close(); }
}

export interface RunResult { answer?: Answer; blocks: number; /** The last block sent had M=1. */ lastMore?: boolean }

/** Runs one case on a session: single datagram, or a Block1 transfer stopped at the first non-2.31 answer. */
export async function runCase(s: FuzzSession, c: FuzzCase, token: Buffer, answerMs: number): Promise<RunResult> {
  const type = c.non ? TYPE.NON : TYPE.CON;
  // Requests known to go unanswered (an open defect) get a short wait: the run stays quick, and once
  // the defect is fixed their answers arrive well within it anyway (loopback, no MASA involved).
  const silent = c.knownDefect === 'block1-incomplete-silent' || c.knownDefect === 'fetch-silent';
  const timeoutMs = silent ? Math.min(answerMs, 1_200) : answerMs;
  if (c.raw) {
    const wait = c.expect === 'answer' ? timeoutMs : 300;
    const answer = await s.exchange(c.raw(token, s.nextMid()), token, wait);
    return answer ? { answer, blocks: 1 } : { blocks: 1 };
  }
  const t = c.transfer!;
  const size = 2 ** (4 + Math.min(t.szx, 6));
  const count = Math.max(1, Math.ceil(t.payload.length / size));
  const order = Array.from({ length: count }, (_, i) => i);
  if (t.order === 'reverse') order.reverse();
  if (t.order === 'skip' && count > 2) order.splice(1, 1);
  let last: Answer | undefined;
  let sent = 0;
  let lastMore = false;
  for (const num of order) {
    const more = num < count - 1;
    lastMore = more;
    const chunk = t.payload.subarray(num * size, (num + 1) * size);
    const datagram = encode({ type, code: [0, 2], messageId: s.nextMid(), token, options: [...t.options, { number: OPT.block1, value: block(num, more, t.szx) }], payload: chunk });
    last = await s.exchange(datagram, token, timeoutMs);
    sent++;
    if (!last || last.code !== '2.31') break;
  }
  return last ? { answer: last, blocks: sent, lastMore } : { blocks: sent, lastMore };
}

const RESOURCES = ['/.well-known/brski/rv', '/.well-known/brski/vs', '/.well-known/brski/es', '/.well-known/est/crts', '/.well-known/est/sen',
  '/.well-known/est/sren', '/.well-known/est/att', '/.well-known/core', '/b/rv', '/est/sen'];
const KNOWN_ABBREV = new Set([0, 301, 302, 303, 304, 305, 306, 401, 402, 403]);
const cfOpt = (cf: number): CoapOption => ({ number: OPT.contentFormat, value: uint(cf) });

function request(code: [number, number], options: CoapOption[], payload?: Buffer, non = false): (token: Buffer, mid: number) => Buffer {
  return (token, mid) => encode({ type: non ? TYPE.NON : TYPE.CON, code, messageId: mid, token, options, ...(payload ? { payload } : {}) });
}

/** A POST of `payload` to `options`: one datagram when it fits, else a Block1 transfer of 512-byte blocks. */
function post(family: string, options: CoapOption[], payload: Buffer, extra: Partial<FuzzCase> = {}): FuzzCase {
  if (payload.length <= 512) return { family, expect: 'answer', raw: request([0, 2], options, payload, extra.non), ...extra };
  return { family, expect: 'answer', transfer: { options, payload, szx: 5 }, ...extra };
}

export interface Bases { pvr: Buffer; csr: Buffer }

/** The generator: `n` cases drawn over the families, reproducible from the PRNG. */
export function generateCases(rng: Rng, bases: Bases, n: number): FuzzCase[] {
  const rv = pathOptions('/.well-known/brski/rv');
  const families: Array<() => FuzzCase> = [
    // Garbage headers: bad version, token length 9-15, truncated, response codes sent as requests, random bytes.
    () => ({ family: 'header-garbage', expect: 'any', raw: (token, mid) => {
      const m = encode({ type: TYPE.CON, code: [0, 1], messageId: mid, token, options: pathOptions(pick(rng, RESOURCES)) });
      switch (int(rng, 6)) {
        case 0: m[0] = (m[0]! & 0x3f) | (pick(rng, [0, 2, 3]) << 6); return m;
        case 1: m[0] = (m[0]! & 0xf0) | (9 + int(rng, 7)); return m;
        case 2: return m.subarray(0, 1 + int(rng, 3));
        case 3: m[1] = (pick(rng, [2, 4, 5, 7]) << 5) | int(rng, 32); return m;
        case 4: return Buffer.from(randomBytes(rng, 96));
        default: return Buffer.concat([m.subarray(0, 4), Buffer.of(0xff)]); // payload marker, no payload (format error)
      }
    } }),
    // Option encodings that are format errors (reserved nibble 15, running past the end).
    () => ({ family: 'option-format', expect: 'any', raw: (token, mid) => {
      const head = encode({ type: TYPE.CON, code: [0, 2], messageId: mid, token, options: [] });
      const tails = [Buffer.of(0xf1, 0x00), Buffer.of(0x1f, 0x00), Buffer.of(0xb8, 0x61), Buffer.of(0xbe, 0xff), Buffer.of(0xd1), Buffer.of(0xe0, 0xff)];
      return Buffer.concat([head, pick(rng, tails)]);
    } }),
    // Well-formed but unacceptable options: unknown critical options, repeated or oversized values.
    () => {
      const pathName = pick(rng, RESOURCES);
      const path = pathOptions(pathName);
      const variants: CoapOption[][] = [
        // Unassigned critical (odd) option numbers: RFC 7252 §5.4.1 requires 4.02 in a CON request.
        [...path, { number: pick(rng, [9, 25, 65001, 10_001 + 2 * int(rng, 20_000)]), value: Buffer.from(randomBytes(rng, 8)) }],
        [...path, cfOpt(CF.voucherCose), cfOpt(CF.cbor)],
        [...path, { number: OPT.contentFormat, value: Buffer.from(randomBytes(rng, 6)) }],
        [...path, { number: OPT.accept, value: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]) }],
        [...path, { number: OPT.uriPath, value: Buffer.alloc(200 + int(rng, 55), 0x41) }],
        // Half with a broken percent-escape: the link-format filter must refuse it, not fail on it.
        [...path, { number: OPT.uriQuery, value: rng() < 0.5 ? Buffer.from(randomBytes(rng, 40)) : Buffer.from(`rt=%${pick(rng, ['zz', 'E0%A4%A', '', 'C3'])}`) }],
        [...path, { number: OPT.size1, value: uint(2 ** 31 + int(rng, 1000)) }],
      ];
      const v = int(rng, variants.length);
      const code: [number, number] = [0, pick(rng, [1, 2])];
      const getResource = code[1] === 1 && /\/(core|crts|att)$/.test(pathName);
      // Accept (critical) with a 5-byte value is an unrecognized option too (RFC 7252 §5.4.3, §5.10).
      const critical = v === 0 || v === 3;
      return { family: 'option-value', ...(getResource && !critical ? { okCodes: ['2.05'] } : {}),
        ...(getResource && critical ? { knownDefect: 'critical-option-ignored' as const } : {}),
        ...(v === 5 && /\/core$/.test(pathName) ? { knownDefect: 'core-query-500' as const } : {}), detail: `variant ${v} 0.0${code[1]} ${variants[v]!.filter((o) => o.number === OPT.uriPath).map((o) => o.value.toString()).join('/').slice(0, 60)}`,
        expect: 'answer', raw: request(code, variants[v]!, Buffer.from(randomBytes(rng, 64))) };
    },
    // Wrong or missing Content-Format for each resource, with real and random payloads.
    () => {
      const path = pick(rng, RESOURCES);
      let cf = pick(rng, [undefined, 0, 40, 50, 60, 281, 286, 836, 65000, int(rng, 65536)]);
      // Never the resource's own format: that would be a valid request (a real PVR or CSR), not a hostile one.
      const own = /rv$/.test(path) ? [836] : /\/(sen|sren)$/.test(path) ? [286] : /\/(vs|es)$/.test(path) ? [50, 60] : [];
      if (cf !== undefined && own.includes(cf)) cf = 65000;
      const payload = pick(rng, [bases.pvr, bases.csr, Buffer.from(randomBytes(rng, 300))]);
      return post('content-format', [...pathOptions(path), ...(cf === undefined ? [] : [cfOpt(cf)])], payload, { detail: `${path} cf ${cf} ${payload.length} bytes` });
    },
    // Truncated, bit-flipped and spliced COSE PVRs, also via the short path and Uri-Path-Abbrev 402.
    () => {
      const m = Buffer.from(pick(rng, [truncate, bitflip, bitflip, splice])(rng, bases.pvr));
      const target = pick(rng, [rv, pathOptions('/b/rv'), [{ number: OPT.abbrev, value: uint(402) }]]);
      return post('pvr-mutant', [...target, cfOpt(CF.voucherCose)], m.length === 0 ? Buffer.of(0) : m, { pvrMutant: m, detail: `${m.length} bytes` });
    },
    // Uri-Path-Abbrev: unknown values, over-long values, repeated, combined with Uri-Path.
    () => {
      let v = int(rng, 2 ** 32);
      while (KNOWN_ABBREV.has(v)) v++;
      const variants: CoapOption[][] = [
        [{ number: OPT.abbrev, value: uint(v) }],
        [{ number: OPT.abbrev, value: Buffer.from(randomBytes(rng, 12)).subarray(0, 5 + int(rng, 7)) }],
        [{ number: OPT.abbrev, value: uint(402) }, { number: OPT.abbrev, value: uint(402) }],
        [{ number: OPT.abbrev, value: uint(pick(rng, [...KNOWN_ABBREV])) }, ...pathOptions('/x')],
      ];
      const k = int(rng, variants.length);
      return { family: 'uri-path-abbrev', detail: `variant ${k}`, expect: 'answer', raw: request([0, 2], [...variants[k]!, cfOpt(CF.voucherCose)], bases.pvr.subarray(0, 200)) };
    },
    // Methods the resources do not have (PUT, DELETE, FETCH, iPATCH, unassigned 0.31), unknown and odd paths.
    () => {
      const code: [number, number] = [0, pick(rng, [3, 4, 5, 6, 7, 31])];
      const path = pick(rng, [...RESOURCES, '/.well-known/brski/../est/sen', '/nope', `/${'a/'.repeat(40)}`, '/.well-known/brski/rv/x']);
      const options = [...pathOptions(path), ...(code[1] === 5 ? [] : [cfOpt(pick(rng, [60, 836, 286]))])];
      // Some as non-confirmable messages: the answer comes back NON, with the same token.
      const non = rng() < 0.2;
      return { family: 'method-path', ...(code[1] === 5 ? { knownDefect: 'fetch-silent' as const } : {}), detail: `0.${String(code[1]).padStart(2, '0')} ${path.slice(0, 50)}${non ? ' NON' : ''}`, expect: 'answer', non, raw: request(code, options, Buffer.from(randomBytes(rng, 32)), non) };
    },
    // Telemetry and enrollment bodies that are not what they claim to be.
    () => {
      const path = pick(rng, ['/.well-known/brski/vs', '/.well-known/brski/es', '/.well-known/est/sen', '/.well-known/est/sren']);
      const enroll = path.includes('/est/');
      const deep = Buffer.alloc(2_000, 0x81); // CBOR: 2,000 nested one-element arrays
      const body = pick(rng, [deep, Buffer.from(randomBytes(rng, 400)), Buffer.from('{"version":1,"status":'), Buffer.from(bitflip(rng, bases.csr))]);
      return post('body', [...pathOptions(path), cfOpt(enroll ? CF.pkcs10 : pick(rng, [CF.cbor, 50]))], body, { detail: `${path} ${body.length} bytes` });
    },
    // Block1 misuse: reserved SZX 7, out-of-order and reversed blocks, a lone last block far out.
    () => {
      const options = [...rv, cfOpt(CF.voucherCose)];
      switch (int(rng, 4)) {
        case 0: return { family: 'block1', detail: 'szx 7', knownDefect: 'block1-szx7', expect: 'answer', raw: request([0, 2], [...options, { number: OPT.block1, value: block(0, true, 7) }], bases.pvr.subarray(0, 256)) };
        case 1: return { family: 'block1', detail: 'skip', knownDefect: 'block1-incomplete-silent', expect: 'answer', transfer: { options, payload: bases.pvr, szx: 4, order: 'skip' } };
        case 2: return { family: 'block1', detail: 'reverse', knownDefect: 'block1-incomplete-silent', expect: 'answer', transfer: { options, payload: bases.pvr, szx: 4, order: 'reverse' } };
        default: return { family: 'block1', detail: 'lone last block', knownDefect: 'block1-incomplete-silent', expect: 'answer', raw: request([0, 2], [...options, { number: OPT.block1, value: block(1 + int(rng, 200), false, 4) }], bases.pvr.subarray(0, 16)) };
      }
    },
  ];
  return Array.from({ length: n }, () => pick(rng, families)());
}

/** An oversized Block1 transfer: `bytes` of junk as a COSE PVR in 512-byte blocks (a 1024-byte block would not fit the 1024-byte DTLS MTU). */
export function oversizedTransfer(bytes: number): FuzzCase {
  return { family: 'block1-oversized', expect: 'answer', transfer: { options: [...pathOptions('/.well-known/brski/rv'), cfOpt(CF.voucherCose)], payload: Buffer.alloc(bytes, 0xa5), szx: 5 } };
}
