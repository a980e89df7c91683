/**
 * DTLS 1.2 server on one UDP socket (digest §9.3): peers are demultiplexed by source
 * address:port; nobody gets state before echoing a stateless HMAC cookie (HelloVerifyRequest),
 * so spoofed ClientHello floods cost one HMAC each and no memory; handshakes and sessions are
 * bounded in number and time; idle sessions are evicted. The cryptography, the CertificateVerify
 * check and the cipher suites are OpenSSL's (dtls-native.ts); chain validation is the app's.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { createDtlsContext, type DtlsStep, type NativeDtlsContext, type NativeDtlsSession } from './dtls-native.ts';

export interface DtlsServerOptions {
  /** PEM certificate chain (end-entity first) and key: the registrar's TLS identity. */
  certChain: string;
  key: string;
  ciphers?: string;
  /** Refuse handshakes without a client certificate (RFC 9148: EST-coaps clients are always authenticated). */
  requireClientCert?: boolean;
  mtu?: number;
  maxSessions?: number;
  /** Concurrent unfinished handshakes (each holds an SSL object after the cookie round). */
  maxHandshakes?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  logger?: Logger;
}

export interface DtlsPeer {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** Certificates the peer presented in the handshake, leaf first (not validated here). */
  readonly certificates: readonly X509Certificate[];
  readonly cipher: string;
}

interface Entry {
  id: string;
  rinfo: { address: string; port: number; family: 'IPv4' | 'IPv6' };
  session: NativeDtlsSession;
  established: boolean;
  peer?: DtlsPeer;
  retransmit?: NodeJS.Timeout;
  /** Handshake deadline, then idle timer once established. */
  expiry: NodeJS.Timeout;
}

export interface DtlsServerEvents {
  session: [DtlsPeer];
  message: [Buffer, DtlsPeer];
  closed: [DtlsPeer | { id: string }, string];
}

const MAX_DATAGRAM = 16 * 1024 + 13;
const CONTENT_HANDSHAKE = 22;

/** A DTLS record at epoch 0 carrying a handshake message: a (new) ClientHello, never app data. */
function isInitialHandshake(d: Buffer): boolean {
  return d.length >= 25 && d[0] === CONTENT_HANDSHAKE && d[3] === 0 && d[4] === 0 && d[13] === 1 /* client_hello */;
}

export class DtlsServer extends EventEmitter<DtlsServerEvents> {
  readonly #o: Required<Omit<DtlsServerOptions, 'logger' | 'ciphers'>> & Pick<DtlsServerOptions, 'logger' | 'ciphers'>;
  readonly #ctx: NativeDtlsContext;
  readonly #entries = new Map<string, Entry>();
  #socket: dgram.Socket | undefined;
  #handshakes = 0;
  readonly stats = { cookiesSent: 0, handshakesFailed: 0, dropped: 0, established: 0 };

  constructor(o: DtlsServerOptions) {
    super();
    this.#o = {
      requireClientCert: true, mtu: 1024, maxSessions: 10_000, maxHandshakes: 256, handshakeTimeoutMs: 30_000, idleTimeoutMs: 300_000, ...o,
    };
    this.#ctx = createDtlsContext({
      server: true, certChain: o.certChain, key: o.key, requireClientCert: this.#o.requireClientCert, mtu: this.#o.mtu,
      ...(o.ciphers ? { ciphers: o.ciphers } : {}),
    });
  }

  /** Established sessions plus handshakes in progress. */
  get sessionCount(): number { return this.#entries.size; }
  get handshakeCount(): number { return this.#handshakes; }

  address(): AddressInfo {
    if (!this.#socket) throw new Error('DTLS server not listening');
    return this.#socket.address();
  }

  peer(id: string): DtlsPeer | undefined { return this.#entries.get(id)?.peer; }

  listen(port: number, host = '::'): Promise<AddressInfo> {
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
    this.#socket = socket;
    socket.on('message', (msg, rinfo) => this.#onDatagram(msg, rinfo));
    socket.on('error', (err) => this.#o.logger?.error({ err: err.message }, 'DTLS socket error'));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => { socket.off('error', reject); resolve(socket.address()); });
    });
  }

  /** Encrypts and sends application data to an established peer; false if there is none. */
  send(peerId: string, data: Buffer): boolean {
    const e = this.#entries.get(peerId);
    if (!e?.established) return false;
    let step: DtlsStep;
    try { step = e.session.write(data); } catch { return false; }
    this.#apply(e, step);
    return !step.closed;
  }

  /** Ends one session (close_notify), e.g. after a proximity mismatch (digest §3.3: close afterwards). */
  disconnect(peerId: string, reason = 'closed by server'): void {
    const e = this.#entries.get(peerId);
    if (!e) return;
    this.#transmit(e.rinfo, e.session.shutdown().out);
    this.#drop(e, reason);
  }

  async close(): Promise<void> {
    for (const e of [...this.#entries.values()]) this.disconnect(e.id, 'server shutting down');
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  #onDatagram(msg: Buffer, r: dgram.RemoteInfo): void {
    if (msg.length === 0 || msg.length > MAX_DATAGRAM) { this.stats.dropped++; return; }
    const id = `${r.address}:${r.port}`;
    const existing = this.#entries.get(id);
    // A ClientHello on an existing association: the peer restarted. Answer it statelessly and
    // let it replace the old session only once it proved its address (RFC 6347 §4.2.8).
    if (existing && !(existing.established && isInitialHandshake(msg))) {
      this.#apply(existing, existing.session.feed(msg));
      return;
    }
    if (!isInitialHandshake(msg)) { this.stats.dropped++; return; }
    const result = this.#ctx.listen(id, msg);
    if (!result.session) {
      if (result.out.length > 0) this.stats.cookiesSent++;
      this.#transmit(r, result.out);
      return;
    }
    const session = result.session;
    if (this.#handshakes >= this.#o.maxHandshakes || (!existing && this.#entries.size >= this.#o.maxSessions)) {
      session.destroy();
      this.stats.dropped++;
      this.#o.logger?.warn({ peer: id, sessions: this.#entries.size, handshakes: this.#handshakes }, 'DTLS session limit reached, ClientHello dropped');
      return;
    }
    if (existing) this.#drop(existing, 'replaced by a new handshake');
    const entry: Entry = {
      id, rinfo: { address: r.address, port: r.port, family: r.family as 'IPv4' | 'IPv6' }, session, established: false,
      expiry: setTimeout(() => this.#expire(id, 'handshake timeout'), this.#o.handshakeTimeoutMs).unref(),
    };
    this.#entries.set(id, entry);
    this.#handshakes++;
    this.#apply(entry, result);
  }

  #apply(e: Entry, step: DtlsStep): void {
    if (this.#entries.get(e.id) !== e) return;
    this.#transmit(e.rinfo, step.out);
    if (step.established) this.#established(e);
    if (step.closed) {
      if (!e.established) this.stats.handshakesFailed++;
      this.#o.logger?.debug({ peer: e.id, error: step.error }, 'DTLS association ended');
      this.#drop(e, step.error ?? 'closed by peer');
      return;
    }
    if (e.established) {
      e.expiry.refresh();
      for (const d of step.data) if (e.peer) this.emit('message', d, e.peer);
    } else {
      this.#armRetransmit(e);
    }
  }

  #established(e: Entry): void {
    e.established = true;
    this.#handshakes--;
    this.stats.established++;
    if (e.retransmit) clearTimeout(e.retransmit);
    clearTimeout(e.expiry);
    e.expiry = setTimeout(() => this.#expire(e.id, 'idle'), this.#o.idleTimeoutMs).unref();
    let certificates: X509Certificate[];
    try {
      certificates = e.session.peerChain().map((der) => new X509Certificate(der));
    } catch {
      // OpenSSL parsed it but node:crypto cannot: treat as a failed handshake.
      this.#expire(e.id, 'unparsable client certificate');
      return;
    }
    const info = e.session.info();
    e.peer = { id: e.id, ...e.rinfo, certificates, cipher: info.cipherStandardName ?? info.cipher ?? '' };
    this.emit('session', e.peer);
  }

  /** Handshake flight retransmission (RFC 6347 §4.2.4), driven by OpenSSL's own timer. */
  #armRetransmit(e: Entry): void {
    if (e.retransmit) clearTimeout(e.retransmit);
    const ms = e.session.timeoutMs();
    if (ms < 0) return;
    e.retransmit = setTimeout(() => {
      if (this.#entries.get(e.id) !== e || e.established) return;
      this.#apply(e, e.session.handleTimeout());
    }, Math.max(1, ms)).unref();
  }

  #expire(id: string, reason: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    if (e.established) this.#transmit(e.rinfo, e.session.shutdown().out);
    this.#drop(e, reason);
  }

  #drop(e: Entry, reason: string): void {
    if (this.#entries.get(e.id) !== e) return;
    this.#entries.delete(e.id);
    if (!e.established) this.#handshakes--;
    if (e.retransmit) clearTimeout(e.retransmit);
    clearTimeout(e.expiry);
    e.session.destroy();
    this.emit('closed', e.peer ?? { id: e.id }, reason);
  }

  #transmit(to: { address: string; port: number }, datagrams: Buffer[]): void {
    const s = this.#socket;
    if (!s) return;
    for (const d of datagrams) s.send(d, to.port, to.address);
  }
}
