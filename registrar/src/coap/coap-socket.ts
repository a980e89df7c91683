/**
 * Makes the DTLS server look like a dgram socket to the `coap` package's Server: decrypted
 * datagrams come out as 'message' events with the peer's address, and send() encrypts towards
 * the same peer. The coap Server checks `sock instanceof dgram.Socket` before it answers a
 * duplicate request from its response cache, so the adapter's prototype chain includes
 * dgram.Socket.prototype; only send/on/emit are ever called on it (no dgram internals are used).
 *
 * Every datagram is checked before the package sees it, because the package's answers to bad
 * input go out without a peer address (lost) or not at all: message format errors (wire.ts) are
 * Reset, request-level errors (validate.ts) are answered here, and Block1 uploads are reassembled
 * here (block1.ts), so the package only ever gets well-formed, complete requests.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { Block1Reassembly } from './block1.ts';
import type { DtlsPeer, DtlsServer } from './dtls-server.ts';
import { checkRequest, forPackage } from './validate.ts';
import { codeByte, encodeMessage, OPTION, parseMessage, TYPE, type CoapMessage, type CoapOption } from './wire.ts';

type SendCallback = (err: Error | null, bytes: number) => void;

export interface DtlsCoapSocketOptions {
  /** Cap on a request body and on the Block1 data buffered per DTLS session. */
  bodyBytes: number;
  logger?: Logger;
}

export class DtlsCoapSocket extends EventEmitter {
  readonly #dtls: DtlsServer;
  readonly #block1: Block1Reassembly;
  readonly #log: Logger | undefined;
  /** Message IDs of our NON answers; random start, like the package's own counter. */
  #mid = randomInt(0x10000);

  constructor(dtls: DtlsServer, o: DtlsCoapSocketOptions) {
    super();
    this.#dtls = dtls;
    this.#block1 = new Block1Reassembly({ bodyBytes: o.bodyBytes });
    this.#log = o.logger;
    dtls.on('message', (data, peer) => this.#receive(data, peer));
    dtls.on('closed', (peer) => this.#block1.dropPeer(peer.id));
  }

  /** Block1 bytes buffered for a peer (tests). */
  block1Bytes(peerId: string): number { return this.#block1.bytesHeld(peerId); }

  #receive(data: Buffer, peer: DtlsPeer): void {
    const parsed = parseMessage(data);
    if (!parsed.ok) {
      // A message format error: Reset a CON (RFC 7252 §4.2), silently drop anything else (§4.3).
      this.#log?.debug({ peer: peer.id, reason: parsed.reason }, 'CoAP message format error');
      if (parsed.header?.type === TYPE.CON) this.#reset(peer.id, parsed.header.messageId);
      return;
    }
    const m = parsed.message;
    const codeClass = m.code >> 5;
    if (m.code === 0) {
      // Empty: ACK/RST concern the package's separate responses; a CON is a ping, answered by Reset (§4.3).
      if (m.type === TYPE.ACK || m.type === TYPE.RST) this.#deliver(data, peer);
      else if (m.type === TYPE.CON) this.#reset(peer.id, m.messageId);
      return;
    }
    // Responses and reserved code classes: the registrar sends no requests, so nothing to match them to.
    if (codeClass !== 0 || m.type === TYPE.ACK || m.type === TYPE.RST) {
      if (m.type === TYPE.CON) this.#reset(peer.id, m.messageId);
      return;
    }
    const refusal = checkRequest(m);
    if (refusal) {
      this.#log?.debug({ peer: peer.id, code: refusal.code, reason: refusal.diagnostic }, 'CoAP request refused before dispatch');
      if (m.type === TYPE.NON && refusal.rejectNon) this.#reset(peer.id, m.messageId);
      else this.#answer(peer.id, m, refusal.code, refusal.diagnostic, refusal.options);
      return;
    }
    let request = forPackage(m);
    if (m.options.some((o) => o.number === OPTION.block1)) {
      const outcome = this.#block1.handle(peer.id, request ?? m);
      if (outcome.kind === 'answer') {
        if (outcome.code !== '2.31') this.#log?.debug({ peer: peer.id, code: outcome.code, reason: outcome.diagnostic }, 'CoAP Block1 refused');
        this.#answer(peer.id, m, outcome.code, outcome.diagnostic, outcome.options);
        return;
      }
      request = outcome.message;
    }
    this.#deliver(request ? encodeMessage(request) : data, peer);
  }

  #deliver(data: Buffer, peer: DtlsPeer): void {
    this.emit('message', data, { address: peer.address, port: peer.port, family: peer.family, size: data.length });
  }

  /** Piggybacked on the ACK of a CON request, or a NON response to a NON (RFC 7252 §5.2), same token. */
  #answer(peerId: string, req: CoapMessage, code: string, diagnostic?: string, options: CoapOption[] = []): void {
    const con = req.type === TYPE.CON;
    const messageId = con ? req.messageId : (this.#mid = (this.#mid + 1) & 0xffff);
    // Diagnostic payload (RFC 7252 §5.5.2): UTF-8 text, no Content-Format; none on 2.31.
    const payload = diagnostic && !code.startsWith('2.') ? Buffer.from(diagnostic) : Buffer.alloc(0);
    this.#dtls.send(peerId, encodeMessage({ type: con ? TYPE.ACK : TYPE.NON, code: codeByte(code), messageId, token: req.token, options, payload }));
  }

  #reset(peerId: string, messageId: number): void {
    this.#dtls.send(peerId, encodeMessage({ type: TYPE.RST, code: 0, messageId, token: Buffer.alloc(0), options: [], payload: Buffer.alloc(0) }));
  }

  /** dgram's signature: send(msg, [offset, length,] port [, address] [, callback]). */
  send(msg: Buffer, ...args: unknown[]): void {
    let buf = msg;
    if (typeof args[0] === 'number' && typeof args[1] === 'number' && (typeof args[2] === 'number')) {
      buf = msg.subarray(args[0], args[0] + args[1]);
      args = args.slice(2);
    }
    const port = args[0] as number;
    const address = typeof args[1] === 'string' ? args[1] : undefined;
    const cb = args.find((a): a is SendCallback => typeof a === 'function');
    // No address (the coap package's error path): there is no peer to route to. The checks in
    // #receive keep the package off that path for every case known to reach it.
    if (address !== undefined) this.#dtls.send(`${address}:${port}`, Buffer.from(buf));
    else this.#log?.warn('CoAP answer without a peer address dropped');
    // UDP semantics: a datagram for a peer whose session has ended is lost, not an error. The coap
    // package turns a send error into an 'error' event on responses nobody listens to (e.g. the
    // delayed empty ACK of a request it dropped itself), which would crash the registrar; its
    // retransmission and exchange timeouts already deal with peers that went away.
    if (cb) queueMicrotask(() => cb(null, buf.length));
  }

  address(): { address: string; port: number; family: string } {
    const a = this.#dtls.address();
    return { address: a.address, port: a.port, family: a.family };
  }
}
Object.setPrototypeOf(DtlsCoapSocket.prototype, dgram.Socket.prototype);
