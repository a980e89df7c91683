/**
 * Requests the `coap` package mishandled before they reach our resources, sent as raw CoAP over
 * an authenticated DTLS session (one test per defect the CoAP fuzzer found, test/faults/coap-hostile):
 * a broken percent-escape on /.well-known/core, Block1/Block2 SZX 7, Block1 gaps and FETCH
 * without Content-Format, unbounded Block1 buffering, unknown critical options, reserved token
 * lengths and other message format errors.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoapsWorld, type CoapsWorld } from './harness.ts';
import { block, core, cf, encode, FETCH, GET, OPT, pathOptions, POST, RawSession, TYPE, uint, type CoapOption, type Decoded } from './raw.ts';

let w: CoapsWorld;
let s: RawSession;
beforeAll(async () => {
  w = await startCoapsWorld({ devices: 2 });
  s = await RawSession.open(w);
}, 60_000);
afterAll(async () => { s?.close(); await w?.stop(); });

let tokens = 0;
const tok = (): Buffer => Buffer.of(0xc0, tokens++ & 0xff, 0x5e);
const text = (d: Decoded | undefined): string => d?.payload.toString() ?? '';
const rv = (): CoapOption[] => [...pathOptions('/.well-known/brski/rv'), cf(836)];
const sizeOf = (szx: number): number => 16 << szx;

/** Raw bytes: header with the given first byte, then `rest`. */
function raw(first: number, code: number, mid: number, rest: number[] = []): Buffer {
  return Buffer.from([first, code, mid >> 8, mid & 0xff, ...rest]);
}

describe('CoAP requests refused before the coap package', () => {
  it('a broken percent-escape in a /.well-known/core query is 4.00, not 5.00', async () => {
    for (const q of ['rt=%zz', 'rt=%E0%A4%A', '%C3=1', 'href=%']) {
      const a = await s.request({ code: GET, token: tok(), options: [...core(), { number: OPT.uriQuery, value: Buffer.from(q) }] });
      expect(a?.code, q).toBe('4.00');
      expect(text(a)).toMatch(/percent-escape/);
    }
    // A valid escape still filters.
    const ok = await s.request({ code: GET, token: tok(), options: [...core(), { number: OPT.uriQuery, value: Buffer.from('rt=brski%2Erv') }] });
    expect(ok?.code).toBe('2.05');
    expect(text(ok)).toBe('</.well-known/brski/rv>;rt=brski.rv;ct=836');
  });

  it('Block1 or Block2 with the reserved SZX 7 is 4.00 (RFC 7959 §2.2)', async () => {
    const b1 = await s.request({ code: POST, token: tok(), options: [...rv(), { number: OPT.block1, value: block(0, true, 7) }], payload: randomBytes(256) });
    expect(b1?.code).toBe('4.00');
    expect(text(b1)).toMatch(/SZX 7/);
    const b2 = await s.request({ code: GET, token: tok(), options: [...core(), { number: OPT.block2, value: block(0, false, 7) }] });
    expect(b2?.code).toBe('4.00');
    // SZX 6 (1024) is the largest valid size and is served.
    expect((await s.request({ code: GET, token: tok(), options: [...core(), { number: OPT.block2, value: block(0, false, 6) }] }))?.code).toBe('2.05');
  });

  it('an empty Block2 value means block 0 of 16 bytes (RFC 7252 §3.2 uint): the first block carries bytes 0-15', async () => {
    const whole = await s.request({ code: GET, token: tok(), options: core() });
    expect(whole?.code).toBe('2.05');
    const first = await s.request({ code: GET, token: tok(), options: [...core(), { number: OPT.block2, value: Buffer.alloc(0) }] });
    expect(first?.code).toBe('2.05');
    expect(first!.payload.equals(whole!.payload.subarray(0, 16))).toBe(true);
    const second = await s.request({ code: GET, token: tok(), options: [...core(), { number: OPT.block2, value: block(1, false, 0) }] });
    expect(second!.payload.equals(whole!.payload.subarray(16, 32))).toBe(true);
  });

  it('Block1 gaps, orphans and foreign blocks are 4.08; FETCH without Content-Format is 4.15; both NON and CON are answered', async () => {
    const size = sizeOf(4);
    const body = randomBytes(size * 4);
    const blockReq = (token: Buffer, num: number, more: boolean, o: { type?: number; options?: CoapOption[]; mid?: number } = {}) => s.request({
      code: POST, token, type: o.type ?? TYPE.CON, ...(o.mid !== undefined ? { mid: o.mid } : {}),
      options: [...(o.options ?? rv()), { number: OPT.block1, value: block(num, more, 4) }], payload: body.subarray(num * size, (num + 1) * size),
    });
    // A last block without its predecessors.
    const lone = await blockReq(tok(), 3, false);
    expect(lone?.code).toBe('4.08');
    expect(lone?.type).toBe(TYPE.ACK);
    // Block 0, then block 2: the gap is refused at once and the transfer is gone (block 1 is an orphan now).
    const t = tok();
    expect((await blockReq(t, 0, true))?.code).toBe('2.31');
    expect((await blockReq(t, 2, true))?.code).toBe('4.08');
    expect((await blockReq(t, 1, true))?.code).toBe('4.08');
    // Reversed order starts with the last block: 4.08.
    expect((await blockReq(tok(), 3, false))?.code).toBe('4.08');
    // Block 1 of a different request (other Uri-Path) under the same token.
    const u = tok();
    expect((await blockReq(u, 0, true))?.code).toBe('2.31');
    expect((await blockReq(u, 1, true, { options: [...pathOptions('/.well-known/brski/vs'), cf(836)] }))?.code).toBe('4.08');
    // A non-final block shorter than its size is malformed.
    const short = await s.request({ code: POST, token: tok(), options: [...rv(), { number: OPT.block1, value: block(0, true, 4) }], payload: body.subarray(0, 10) });
    expect(short?.code).toBe('4.00');
    // NON: the answer is a NON with the same token.
    const non = await blockReq(tok(), 2, false, { type: TYPE.NON });
    expect(non?.code).toBe('4.08');
    expect(non?.type).toBe(TYPE.NON);
    // FETCH: without Content-Format 4.15, with one the resource's 4.05 (no resource has FETCH).
    expect((await s.request({ code: FETCH, token: tok(), options: rv().slice(0, -1), payload: randomBytes(8) }))?.code).toBe('4.15');
    expect((await s.request({ code: FETCH, token: tok(), options: rv(), payload: randomBytes(8) }))?.code).toBe('4.05');
    // Observe on a POST used to send the package down its address-less error path: now answered by the resource.
    const observed = await s.request({ code: POST, token: tok(), options: [...pathOptions('/.well-known/core'), { number: 6, value: Buffer.alloc(0) }] });
    expect(observed?.code).toBe('4.05');
  });

  it('an in-order transfer is reassembled; a resent block (same message ID) gets the same answer and does not duplicate data', async () => {
    // POST to /core reaches the resource only as one whole request: its 4.05 proves reassembly.
    const size = sizeOf(5);
    const body = randomBytes(size * 2 + 100);
    const t = tok();
    const send = (num: number, more: boolean, mid: number) => s.request({ code: POST, token: t, mid, options: [...core(), { number: OPT.block1, value: block(num, more, 5) }], payload: body.subarray(num * size, (num + 1) * size) });
    const first = await send(0, true, 7001);
    expect(first?.code).toBe('2.31');
    expect(first?.options.find((o) => o.number === OPT.block1)?.value).toEqual(block(0, true, 5));
    expect((await send(0, true, 7001))?.code).toBe('2.31'); // retransmission
    expect((await send(1, true, 7002))?.code).toBe('2.31');
    const last = await send(2, false, 7003);
    expect(last?.code).toBe('4.05');
    expect(text(last)).toBe('GET only');
    // The last block resent: answered again (not 4.08), by the resource or the package's cache.
    expect((await send(2, false, 7003))?.code).toBe('4.05');
  });

  it('Block1 data is capped at the body limit per session: 4.13 with Size1, then the transfer is gone', async () => {
    const limit = w.reg.config.limits.bodyBytes;
    const size = sizeOf(6);
    const t = tok();
    let last: Decoded | undefined;
    let num = 0;
    for (; num * size <= limit + size; num++) {
      last = await s.request({ code: POST, token: t, options: [...core(), { number: OPT.block1, value: block(num, true, 6) }], payload: Buffer.alloc(size, 0xa5) });
      if (last?.code !== '2.31') break;
    }
    expect(last?.code).toBe('4.13');
    expect(num * size + size).toBeGreaterThan(limit); // refused at the block that crossed the limit, not later
    expect(num * size).toBeLessThanOrEqual(limit);
    const size1 = last!.options.find((o) => o.number === OPT.size1);
    expect(size1?.value).toEqual(uint(limit));
    expect((await s.request({ code: POST, token: t, options: [...core(), { number: OPT.block1, value: block(num + 1, true, 6) }], payload: Buffer.alloc(size) }))?.code).toBe('4.08');
    // A Size1 announcing more than the limit is refused at block 0.
    const early = await s.request({ code: POST, token: tok(), options: [...core(), { number: OPT.size1, value: uint(limit + 1) }, { number: OPT.block1, value: block(0, true, 6) }], payload: Buffer.alloc(size) });
    expect(early?.code).toBe('4.13');
  }, 30_000);

  it('unknown critical options are 4.02 (RFC 7252 §5.4.1), also on GET resources; unknown elective ones are ignored', async () => {
    const get = (extra: { number: number; value: Buffer }[], type: number = TYPE.CON) => s.request({ code: GET, token: tok(), type, options: [...core(), ...extra] }, 1_000);
    for (const n of [9 /* OSCORE */, 25, 65001, 10_001]) {
      const a = await get([{ number: n, value: randomBytes(4) }]);
      expect(a?.code, `option ${n}`).toBe('4.02');
      expect(text(a)).toContain(String(n));
    }
    expect((await get([{ number: OPT.accept, value: Buffer.alloc(5, 0xff) }]))?.code).toBe('4.02'); // length out of range
    expect((await get([{ number: OPT.accept, value: uint(40) }, { number: OPT.accept, value: uint(40) }]))?.code).toBe('4.02'); // repeated
    expect((await get([{ number: OPT.uriPath, value: Buffer.alloc(256, 0x61) }]))?.code).toBe('4.02');
    expect((await get([{ number: 65000, value: randomBytes(4) }]))?.code).toBe('2.05'); // elective
    expect((await get([{ number: 3, value: Buffer.from('registrar.example') }]))?.code).toBe('2.05'); // Uri-Host is understood
    expect((await s.request({ code: POST, token: tok(), options: [...rv(), { number: 25, value: Buffer.alloc(1) }], payload: randomBytes(16) }))?.code).toBe('4.02');
    // A NON request with one is rejected with a Reset (RFC 7252 §4.3).
    const mid = s.nextMid();
    const rst = await s.send(encode({ type: TYPE.NON, code: GET, messageId: mid, token: tok(), options: [...core(), { number: 25, value: Buffer.alloc(1) }] }), (d) => d.messageId === mid);
    expect(rst?.type).toBe(TYPE.RST);
  });

  it('reserved token lengths and other format errors are Reset (CON) or dropped (NON), never echoed', async () => {
    const resetFor = async (datagram: Buffer, mid: number) => s.send(datagram, (d) => d.messageId === mid, 1_000);
    for (let tkl = 9; tkl <= 15; tkl++) {
      const mid = s.nextMid();
      const a = await resetFor(raw(0x40 | tkl, 0x01, mid, [...randomBytes(tkl), 0xb4, 0x63, 0x6f, 0x72, 0x65]), mid);
      expect(a?.type, `TKL ${tkl}`).toBe(TYPE.RST);
      expect(a?.code).toBe('0.00');
      expect(a?.token.length).toBe(0);
    }
    const nonMid = s.nextMid();
    expect(await resetFor(raw(0x50 | 10, 0x01, nonMid, [...randomBytes(10)]), nonMid)).toBeUndefined();
    const formatErrors: Array<(mid: number) => Buffer> = [
      (mid) => raw(0x40, 0x02, mid, [0xff]), // payload marker without payload
      (mid) => raw(0x40, 0x02, mid, [0xf1, 0x00]), // option delta 15
      (mid) => raw(0x40, 0x02, mid, [0x1f, 0x00]), // option length 15
      (mid) => raw(0x40, 0x02, mid, [0xb8, 0x61]), // value runs past the end
      (mid) => raw(0x40, 0x02, mid, [0xd1]), // extended delta missing
      (mid) => raw(0x42, 0x01, mid, [0x01]), // token runs past the end
      (mid) => raw(0x41, 0x00, mid, [0x01]), // Empty message with a token
      (mid) => raw(0x40, 0x00, mid), // Empty CON: a ping, answered by Reset
      (mid) => raw(0x40, 0x45, mid), // a 2.05 response sent to the server
    ];
    for (const [i, f] of formatErrors.entries()) {
      const mid = s.nextMid();
      expect((await resetFor(f(mid), mid))?.type, `case ${i}`).toBe(TYPE.RST);
    }
    expect(s.undecodable).toEqual([]);
    // Unknown version: silently ignored (RFC 7252 §3).
    const v2 = s.nextMid();
    expect(await resetFor(raw(0x80, 0x01, v2), v2)).toBeUndefined();
    // The session still serves.
    expect((await s.request({ code: GET, token: tok(), options: core() }))?.code).toBe('2.05');
  });
});
