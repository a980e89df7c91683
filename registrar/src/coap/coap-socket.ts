/**
 * Makes the DTLS server look like a dgram socket to the `coap` package's Server: decrypted
 * datagrams come out as 'message' events with the peer's address, and send() encrypts towards
 * the same peer. The coap Server checks `sock instanceof dgram.Socket` before it answers a
 * duplicate request from its response cache, so the adapter's prototype chain includes
 * dgram.Socket.prototype; only send/on/emit are ever called on it (no dgram internals are used).
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { DtlsServer } from './dtls-server.ts';

type SendCallback = (err: Error | null, bytes: number) => void;

export class DtlsCoapSocket extends EventEmitter {
  readonly #dtls: DtlsServer;

  constructor(dtls: DtlsServer) {
    super();
    this.#dtls = dtls;
    dtls.on('message', (data, peer) => {
      this.emit('message', data, { address: peer.address, port: peer.port, family: peer.family, size: data.length });
    });
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
    // No address (the coap package's error path): there is no peer to route to.
    if (address !== undefined) this.#dtls.send(`${address}:${port}`, Buffer.from(buf));
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
