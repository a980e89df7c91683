/**
 * DTLS 1.2 client for the constrained pledge: the registrar's OpenSSL addon in client mode
 * (registrar/src/coap/dtls-native.ts) over a connected UDP socket. The registrar is accepted
 * provisionally (RFC 8995 §5.1): its chain is kept for the pin check after the voucher.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { BrskiError } from '@brski/shared/errors';
import { createDtlsContext, type DtlsStep, type NativeDtlsSession } from '@brski/registrar/coap/dtls-native';

export interface DtlsClientOptions {
  host: string;
  port: number;
  /** PEM: IDevID (or LDevID) first, then its chain. */
  certChain: string;
  key: string;
  ciphers?: string;
  mtu?: number;
  handshakeTimeoutMs?: number;
  /** TEST ONLY: sign CertificateVerify with this key (proves the server checks it). */
  unsafeCertificateVerifyKey?: string;
}

export class DtlsClient extends EventEmitter<{ message: [Buffer]; close: [string] }> {
  readonly #socket: dgram.Socket;
  readonly #session: NativeDtlsSession;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  serverCertificates: X509Certificate[] = [];
  cipher = '';

  private constructor(socket: dgram.Socket, session: NativeDtlsSession) {
    super();
    this.#socket = socket;
    this.#session = session;
  }

  static async connect(o: DtlsClientOptions): Promise<DtlsClient> {
    const ctx = createDtlsContext({
      server: false, certChain: o.certChain, key: o.key, mtu: o.mtu ?? 1024,
      ...(o.ciphers ? { ciphers: o.ciphers } : {}),
      ...(o.unsafeCertificateVerifyKey ? { unsafeCertificateVerifyKey: o.unsafeCertificateVerifyKey } : {}),
    });
    const socket = dgram.createSocket(o.host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(o.port, o.host, () => { socket.off('error', reject); resolve(); });
    });
    const client = new DtlsClient(socket, ctx.connect(`${o.host}:${o.port}`));
    // ICMP port-unreachable surfaces as an 'error' on a connected UDP socket: end the session
    // (an unhandled 'error' would take the whole process down, e.g. a fleet during a registrar restart).
    socket.on('error', (err) => client.#end(`socket error: ${err.message}`));
    try {
      await client.#handshake(o.handshakeTimeoutMs ?? 10_000);
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  #handshake(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => fail(new BrskiError('upstream-timeout', 'DTLS handshake timed out')), timeoutMs);
      const fail = (err: Error) => { clearTimeout(deadline); this.#socket.off('message', onMessage); reject(err); };
      const step = (s: DtlsStep) => {
        this.#transmit(s.out);
        if (s.established) {
          clearTimeout(deadline);
          if (this.#timer) clearTimeout(this.#timer);
          this.serverCertificates = this.#session.peerChain().map((d) => new X509Certificate(d));
          const info = this.#session.info();
          this.cipher = info.cipherStandardName ?? info.cipher ?? '';
          this.#socket.off('message', onMessage);
          this.off('close', onClose);
          this.#socket.on('message', (m) => this.#onRecord(m));
          for (const d of s.data) this.emit('message', d);
          resolve();
          return;
        }
        if (s.closed) { fail(new BrskiError('unauthenticated', `DTLS handshake failed: ${s.error ?? 'closed by peer'}`)); return; }
        this.#arm(step);
      };
      const onMessage = (m: Buffer) => step(this.#session.feed(m));
      const onClose = (reason: string) => fail(new BrskiError('unavailable', `DTLS handshake failed: ${reason}`));
      this.once('close', onClose);
      this.#socket.on('message', onMessage);
      step(this.#session.handshake());
    });
  }

  /** Retransmits the last flight when OpenSSL's timer says so (RFC 6347 §4.2.4). */
  #arm(step: (s: DtlsStep) => void): void {
    if (this.#timer) clearTimeout(this.#timer);
    const ms = this.#session.timeoutMs();
    if (ms >= 0) this.#timer = setTimeout(() => step(this.#session.handleTimeout()), Math.max(1, ms));
  }

  #onRecord(m: Buffer): void {
    const s = this.#session.feed(m);
    this.#transmit(s.out);
    for (const d of s.data) this.emit('message', d);
    if (s.closed) this.#end(s.error ?? 'closed by peer');
  }

  send(data: Buffer): void {
    if (this.#closed) throw new BrskiError('unavailable', 'DTLS session closed');
    const s = this.#session.write(data);
    this.#transmit(s.out);
    if (s.closed) this.#end(s.error ?? 'closed');
  }

  get closed(): boolean { return this.#closed; }

  close(): void {
    if (this.#closed) return;
    try { this.#transmit(this.#session.shutdown().out); } catch { /* socket already gone */ }
    this.#end('closed by client');
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#session.destroy();
    try { this.#socket.close(); } catch { /* already closed */ }
    this.emit('close', reason);
  }

  #transmit(datagrams: Buffer[]): void {
    for (const d of datagrams) this.#socket.send(d);
  }
}
