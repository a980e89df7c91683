/**
 * Block1 reassembly (RFC 7959 §2.3, §2.5) for the registrar's CoAP layer. The `coap` package's
 * own reassembly accepts blocks in any order and fails only at the last one, on an error path
 * whose answer never reaches a DTLS peer; it buffers without a byte limit and accepts SZX 7. So
 * the adapter keeps block-wise uploads away from it: blocks are collected here, in order, and the
 * package is handed one request carrying the whole body.
 *
 * - Blocks must arrive in order (byte offset NUM·size = bytes so far), with a full payload in each
 *   non-final block: a gap, a block without its transfer or a different request under the same
 *   token is answered 4.08 Request Entity Incomplete (§2.9.2).
 * - Reassembly state is per DTLS session and capped at `bodyBytes` in total: a transfer that
 *   would outgrow it (or announces a larger Size1) is answered 4.13 with Size1 (§2.9.3, §4);
 *   older transfers of the session are dropped first to make room for the current one.
 * - A confirmable block resent with the same message ID (RFC 7252 §4.5 deduplication) gets the
 *   same outcome again: the same 2.31, refusal, or whole request (the package then answers from
 *   its response cache when it has one).
 * State ends with the DTLS session (dropPeer) or when a session's transfer count or budget evicts it.
 */
import { blockOption, OPTION, parseBlock, readUint, TYPE, uintOption, type CoapMessage, type CoapOption } from './wire.ts';

export type Block1Outcome =
  | { kind: 'answer'; code: string; diagnostic?: string; options?: CoapOption[] }
  | { kind: 'forward'; message: CoapMessage };

interface Transfer {
  chunks: Buffer[];
  /** Bytes buffered (chunks, or the whole request once complete): what counts against the budget. */
  bytes: number;
  /** Body bytes received so far: the byte offset the next block must start at. */
  next: number;
  /** Request options other than the block-wise ones: every block must repeat them. */
  signature: string;
  lastMessageId: number;
  lastOutcome: Block1Outcome;
}

interface Peer { transfers: Map<string, Transfer>; bytes: number }

/** Options that differ between the blocks of one request (RFC 7959 §2.3, §4). */
const PER_BLOCK = new Set<number>([OPTION.block1, OPTION.block2, OPTION.size1, OPTION.size2]);

const signatureOf = (m: CoapMessage): string =>
  `${m.code}|${m.options.filter((o) => !PER_BLOCK.has(o.number)).map((o) => `${o.number}:${o.value.toString('hex')}`).join(',')}`;

export class Block1Reassembly {
  readonly #peers = new Map<string, Peer>();
  readonly #bodyBytes: number;
  readonly #maxTransfers: number;

  constructor(o: { bodyBytes: number; maxTransfersPerPeer?: number }) {
    this.#bodyBytes = o.bodyBytes;
    this.#maxTransfers = o.maxTransfersPerPeer ?? 4;
  }

  /** Bytes held for a peer (tests, metrics). */
  bytesHeld(peerId: string): number { return this.#peers.get(peerId)?.bytes ?? 0; }

  dropPeer(peerId: string): void { this.#peers.delete(peerId); }

  /** `m` is a request carrying a Block1 option already checked by validate.ts (≤ 3 bytes, SZX ≠ 7). */
  handle(peerId: string, m: CoapMessage): Block1Outcome {
    const block = parseBlock(m.options.find((o) => o.number === OPTION.block1)!.value)!;
    const size = 16 << block.szx;
    let key = m.token.toString('hex');
    let peer = this.#peers.get(peerId);
    let known = peer?.transfers.get(key);
    if (known && m.type === TYPE.CON && known.lastMessageId === m.messageId) return known.lastOutcome;

    const refuse = (code: string, diagnostic: string, options?: CoapOption[]): Block1Outcome => {
      const outcome: Block1Outcome = { kind: 'answer', code, diagnostic, ...(options ? { options } : {}) };
      // An existing transfer ends, keeping only what a retransmission needs (message ID, answer). Without
      // one nothing is stored: a resend is refused the same way again, and refusals cannot crowd out transfers.
      if (known) this.#put(peerId, key, { chunks: [], bytes: 0, next: 0, signature: '', lastMessageId: m.messageId, lastOutcome: outcome });
      return outcome;
    };
    const tooLarge = (): Block1Outcome => refuse('4.13', `request body over ${this.#bodyBytes} bytes`, [{ number: OPTION.size1, value: uintOption(this.#bodyBytes) }]);

    if (m.payload.length > size || (block.more && m.payload.length !== size)) {
      return refuse('4.00', `Block1 ${block.num}: ${m.payload.length} bytes in a block of ${size}`);
    }
    const offset = block.num * size;
    let t: Transfer;
    if (block.num === 0) {
      const size1 = m.options.find((o) => o.number === OPTION.size1);
      // Size1 announces the whole body (RFC 7959 §4); a value over 4 bytes is ignored (elective, bad length).
      if (size1 && size1.value.length <= 4 && readUint(size1.value) > this.#bodyBytes) return tooLarge();
      t = { chunks: [], bytes: 0, next: 0, signature: signatureOf(m), lastMessageId: m.messageId, lastOutcome: { kind: 'answer', code: '2.31' } };
    } else {
      if (!known || known.signature === '') {
        // A client may change the token from block to block (RFC 7959 §2.4; libcoap does): then this
        // block belongs to the one transfer of the same request that it continues exactly.
        const signature = signatureOf(m);
        const same = [...(peer?.transfers ?? [])].filter(([, t]) => t.signature === signature && t.next === offset);
        if (same.length !== 1) return refuse('4.08', `Block1 ${block.num} without the blocks before it`);
        const [oldKey, continued] = same[0]!;
        peer!.transfers.delete(oldKey);
        peer!.bytes -= continued.bytes;
        known = continued;
      }
      if (known.signature !== signatureOf(m)) return refuse('4.08', `Block1 ${block.num} of a different request`);
      if (offset !== known.next) return refuse('4.08', `Block1 ${block.num} at byte ${offset}, expected byte ${known.next}`);
      t = known;
    }
    if (t.next + m.payload.length > this.#bodyBytes) return tooLarge();
    // Room for this block in the session's budget: older transfers give way first.
    peer = this.#put(peerId, key, t);
    this.#makeRoom(peer, key, m.payload.length);
    t.chunks.push(Buffer.from(m.payload)); // a copy: the slice would pin the whole decrypted datagram
    t.bytes += m.payload.length;
    t.next += m.payload.length;
    peer.bytes += m.payload.length;
    t.lastMessageId = m.messageId;
    if (block.more) {
      t.lastOutcome = { kind: 'answer', code: '2.31', options: [{ number: OPTION.block1, value: blockOption(block) }] };
      return t.lastOutcome;
    }
    // Complete: one request with the whole body (no Block1 left for the package to act on).
    const body = Buffer.concat(t.chunks);
    const message: CoapMessage = { ...m, options: m.options.filter((o) => o.number !== OPTION.block1 && o.number !== OPTION.size1), payload: body };
    // The whole request stays (and stays charged to the budget) for a resent last block.
    t.chunks = [];
    t.signature = '';
    t.lastOutcome = { kind: 'forward', message };
    return t.lastOutcome;
  }

  /** Stores `t` as the peer's most recent transfer under `key`, evicting the oldest beyond the count limit. */
  #put(peerId: string, key: string, t: Transfer): Peer {
    let peer = this.#peers.get(peerId);
    if (!peer) { peer = { transfers: new Map(), bytes: 0 }; this.#peers.set(peerId, peer); }
    const old = peer.transfers.get(key);
    if (old) { peer.bytes -= old.bytes; peer.transfers.delete(key); }
    peer.transfers.set(key, t);
    peer.bytes += t.bytes;
    this.#evict(peer, key, () => peer.transfers.size <= this.#maxTransfers);
    return peer;
  }

  #makeRoom(peer: Peer, key: string, bytes: number): void {
    this.#evict(peer, key, () => peer.bytes + bytes <= this.#bodyBytes);
  }

  /**
   * Drops the peer's entries other than `key` until `enough()`: finished ones (a refusal or a
   * completed request kept for a resend) before transfers in progress, oldest first in each group.
   */
  #evict(peer: Peer, key: string, enough: () => boolean): void {
    for (const inProgress of [false, true]) {
      for (const [k, other] of peer.transfers) {
        if (enough()) return;
        if (k === key || (other.signature !== '') !== inProgress) continue;
        peer.bytes -= other.bytes;
        peer.transfers.delete(k);
      }
    }
  }
}
