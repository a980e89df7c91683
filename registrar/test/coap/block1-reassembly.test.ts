/**
 * Block1Reassembly on its own: what a DTLS session can make the registrar hold. Parallel
 * transfers share one budget per session (older ones give way), the number of transfers per
 * session is bounded, sessions do not share state, and a session's state goes with it.
 */
import { describe, expect, it } from 'vitest';
import { Block1Reassembly } from '../../src/coap/block1.ts';
import { blockOption, codeByte, OPTION, TYPE, type CoapMessage } from '../../src/coap/wire.ts';

const SZX = 6; // 1024-byte blocks
const SIZE = 1024;

function blockMsg(token: string, num: number, more: boolean, mid: number, payload = Buffer.alloc(SIZE, num & 0xff)): CoapMessage {
  return {
    type: TYPE.CON, code: codeByte('0.02'), messageId: mid, token: Buffer.from(token),
    options: [{ number: OPTION.uriPath, value: Buffer.from('x') }, { number: OPTION.block1, value: blockOption({ num, more, szx: SZX }) }], payload,
  };
}

describe('Block1Reassembly', () => {
  it('keeps a session at or under the body limit however many transfers it opens', () => {
    const r = new Block1Reassembly({ bodyBytes: 8 * SIZE, maxTransfersPerPeer: 4 });
    let mid = 0;
    // 4 transfers in parallel, 6 blocks each: 24 KiB offered against an 8 KiB budget.
    for (let num = 0; num < 6; num++) {
      for (const t of ['a', 'b', 'c', 'd']) {
        const out = r.handle('p1', blockMsg(t, num, true, ++mid));
        expect(out.kind).toBe('answer');
        expect(r.bytesHeld('p1')).toBeLessThanOrEqual(8 * SIZE);
      }
    }
    // Each block evicted older transfers to make room, so the others now have gaps: 4.08.
    const codes = ['a', 'b', 'c', 'd'].map((t) => (r.handle('p1', blockMsg(t, 6, false, ++mid)) as { code?: string }).code ?? 'forward');
    expect(codes.filter((c) => c === '4.08').length).toBeGreaterThanOrEqual(3);
    expect(r.bytesHeld('p1')).toBeLessThanOrEqual(8 * SIZE);
  });

  it('one transfer over the limit is 4.13 with Size1 and frees what it held', () => {
    const r = new Block1Reassembly({ bodyBytes: 3 * SIZE });
    for (let num = 0; num < 3; num++) expect(r.handle('p', blockMsg('t', num, true, num + 1))).toMatchObject({ kind: 'answer', code: '2.31' });
    expect(r.bytesHeld('p')).toBe(3 * SIZE);
    const out = r.handle('p', blockMsg('t', 3, true, 4));
    expect(out).toMatchObject({ kind: 'answer', code: '4.13', options: [{ number: OPTION.size1, value: Buffer.of(0x0c, 0x00) }] });
    expect(r.bytesHeld('p')).toBe(0);
    // The refusal is repeated for a retransmission of the same message.
    expect(r.handle('p', blockMsg('t', 3, true, 4))).toMatchObject({ code: '4.13' });
  });

  it('bounds the number of transfers per session; sessions are separate; dropPeer forgets a session', () => {
    const r = new Block1Reassembly({ bodyBytes: 64 * SIZE, maxTransfersPerPeer: 2 });
    r.handle('p', blockMsg('a', 0, true, 1));
    r.handle('p', blockMsg('b', 0, true, 2));
    r.handle('p', blockMsg('c', 0, true, 3)); // evicts 'a'
    expect(r.bytesHeld('p')).toBe(2 * SIZE);
    expect(r.handle('p', blockMsg('a', 1, true, 4))).toMatchObject({ code: '4.08' });
    // Same token on another session: no state there.
    expect(r.handle('q', blockMsg('b', 1, true, 5))).toMatchObject({ code: '4.08' });
    expect(r.handle('p', blockMsg('b', 1, false, 6)).kind).toBe('forward');
    r.dropPeer('p');
    expect(r.bytesHeld('p')).toBe(0);
    expect(r.handle('p', blockMsg('c', 1, true, 7))).toMatchObject({ code: '4.08' });
  });

  it('follows a client that changes the token between blocks, without mixing concurrent transfers that keep theirs', () => {
    const r = new Block1Reassembly({ bodyBytes: 64 * SIZE });
    // libcoap style: a new token per block, one transfer per resource.
    expect(r.handle('p', blockMsg('t1', 0, true, 1, Buffer.alloc(SIZE, 1)))).toMatchObject({ code: '2.31' });
    expect(r.handle('p', blockMsg('t2', 1, true, 2, Buffer.alloc(SIZE, 2)))).toMatchObject({ code: '2.31' });
    const out = r.handle('p', blockMsg('t3', 2, false, 3, Buffer.from('z')));
    expect(out.kind === 'forward' && out.message.payload.equals(Buffer.concat([Buffer.alloc(SIZE, 1), Buffer.alloc(SIZE, 2), Buffer.from('z')]))).toBe(true);
    expect(out.kind === 'forward' && out.message.token.toString()).toBe('t3');
    // Two transfers of the same request with stable tokens: each block goes to its own token's transfer.
    r.handle('p', blockMsg('A', 0, true, 10, Buffer.alloc(SIZE, 0xa)));
    r.handle('p', blockMsg('B', 0, true, 11, Buffer.alloc(SIZE, 0xb)));
    const a = r.handle('p', blockMsg('A', 1, false, 12, Buffer.from('a')));
    const b = r.handle('p', blockMsg('B', 1, false, 13, Buffer.from('b')));
    expect(a.kind === 'forward' && a.message.payload.equals(Buffer.concat([Buffer.alloc(SIZE, 0xa), Buffer.from('a')]))).toBe(true);
    expect(b.kind === 'forward' && b.message.payload.equals(Buffer.concat([Buffer.alloc(SIZE, 0xb), Buffer.from('b')]))).toBe(true);
    // With two candidates, a block under an unknown token is ambiguous: 4.08, and neither transfer is touched.
    r.handle('p', blockMsg('C', 0, true, 20));
    r.handle('p', blockMsg('D', 0, true, 21));
    expect(r.handle('p', blockMsg('E', 1, true, 22))).toMatchObject({ code: '4.08' });
    expect(r.handle('p', blockMsg('C', 1, true, 23))).toMatchObject({ code: '2.31' });
    expect(r.handle('p', blockMsg('D', 1, true, 24))).toMatchObject({ code: '2.31' });
  });

  it('forwards the whole body, in order, without Block1', () => {
    const r = new Block1Reassembly({ bodyBytes: 64 * SIZE });
    r.handle('p', blockMsg('t', 0, true, 1, Buffer.alloc(SIZE, 1)));
    r.handle('p', blockMsg('t', 1, true, 2, Buffer.alloc(SIZE, 2)));
    const out = r.handle('p', blockMsg('t', 2, false, 3, Buffer.from('end')));
    if (out.kind !== 'forward') throw new Error(`expected forward, got ${out.code}`);
    expect(out.message.payload).toEqual(Buffer.concat([Buffer.alloc(SIZE, 1), Buffer.alloc(SIZE, 2), Buffer.from('end')]));
    expect(out.message.options.map((o) => o.number)).toEqual([OPTION.uriPath]);
    expect(out.message.messageId).toBe(3);
  });
});
