/**
 * Stateful join proxy for CoAPS (cBRSKI; RFC 8995 §4.1 applied to DTLS, as in the constrained
 * join-proxy specification's stateful mode): each pledge address/port gets its own upstream UDP
 * socket to the registrar, so the registrar's answers find their way back without the proxy
 * touching the DTLS records. Sessions are evicted after an idle period; only datagrams that look
 * like DTLS are relayed, and only a handshake record may open a session (no state for junk).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { dtlsRecordType } from './records.ts';
import type { RegistrarLocator, Target } from './upstream.ts';

export interface UdpRelayEvent {
  kind: 'session-open' | 'session-evicted' | 'dropped';
  pledge: string;
  detail?: string;
}

export interface UdpRelayOptions {
  listen: { host: string; port: number };
  upstream: RegistrarLocator;
  /** A session with no datagram either way for this long is evicted (default 60 s). */
  idleTimeoutMs?: number;
  /** Concurrent sessions; datagrams opening more are dropped (default 1024). */
  maxSessions?: number;
  /** Datagrams held per session while its upstream socket is being set up (default 8). */
  maxPending?: number;
  tap?: (dir: 'to-registrar' | 'to-pledge', datagram: Buffer) => void;
  onEvent?: (e: UdpRelayEvent) => void;
}

interface Session {
  key: string;
  pledge: RemoteInfo;
  socket: Socket | undefined;
  pending: Buffer[] | undefined;
  lastSeen: number;
}

export interface UdpRelayStats {
  sessions: number;
  opened: number;
  evicted: number;
  dropped: number;
  datagrams: { 'to-registrar': number; 'to-pledge': number };
}

export class UdpRelay {
  readonly #o: UdpRelayOptions;
  readonly #socket: Socket;
  readonly #sessions = new Map<string, Session>();
  readonly stats: UdpRelayStats = { sessions: 0, opened: 0, evicted: 0, dropped: 0, datagrams: { 'to-registrar': 0, 'to-pledge': 0 } };
  #sweeper: NodeJS.Timeout | undefined;
  #port = 0;

  constructor(o: UdpRelayOptions) {
    this.#o = o;
    this.#socket = createSocket({ type: isIPv6(o.listen.host) ? 'udp6' : 'udp4' });
    this.#socket.on('message', (m, r) => this.#fromPledge(m, r));
    this.#socket.on('error', () => { /* per-datagram send errors; the socket stays up */ });
  }

  get port(): number { return this.#port; }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.bind(this.#o.listen.port, this.#o.listen.host, () => {
        this.#socket.off('error', reject);
        this.#port = this.#socket.address().port;
        const idle = this.#idle();
        this.#sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(5000, idle / 2)));
        this.#sweeper.unref();
        resolve(this.#port);
      });
    });
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const s of this.#sessions.values()) this.#drop(s, 'closing');
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }

  /** Evicts sessions idle longer than the timeout (runs on a timer; callable for tests). */
  sweep(now = Date.now()): void {
    const idle = this.#idle();
    for (const s of this.#sessions.values()) {
      if (now - s.lastSeen >= idle) {
        this.stats.evicted++;
        this.#drop(s, `idle for ${now - s.lastSeen} ms`);
      }
    }
  }

  #idle(): number { return this.#o.idleTimeoutMs ?? 60_000; }

  #drop(s: Session, why: string): void {
    if (this.#sessions.get(s.key) !== s) return; // already gone (a new session may hold the key)
    this.#sessions.delete(s.key);
    this.stats.sessions = this.#sessions.size;
    s.socket?.close();
    s.socket = undefined;
    this.#o.onEvent?.({ kind: 'session-evicted', pledge: s.key, detail: why });
  }

  #dropped(key: string, detail: string): void {
    this.stats.dropped++;
    this.#o.onEvent?.({ kind: 'dropped', pledge: key, detail });
  }

  #fromPledge(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.family === 'IPv6' ? `[${rinfo.address}]` : rinfo.address}:${rinfo.port}`;
    const type = dtlsRecordType(msg);
    if (type === undefined) { this.#dropped(key, 'not a DTLS record'); return; }
    let s = this.#sessions.get(key);
    if (!s) {
      if (type !== 22) { this.#dropped(key, 'no session and not a DTLS handshake record'); return; }
      if (this.#sessions.size >= (this.#o.maxSessions ?? 1024)) { this.#dropped(key, 'session table full'); return; }
      s = { key, pledge: rinfo, socket: undefined, pending: [], lastSeen: Date.now() };
      this.#sessions.set(key, s);
      this.stats.sessions = this.#sessions.size;
      this.stats.opened++;
      void this.#open(s);
    }
    s.lastSeen = Date.now();
    this.#o.tap?.('to-registrar', msg);
    if (s.pending) {
      if (s.pending.length >= (this.#o.maxPending ?? 8)) { this.#dropped(key, 'upstream not ready'); return; }
      s.pending.push(msg);
      return;
    }
    this.stats.datagrams['to-registrar']++;
    s.socket?.send(msg);
  }

  async #open(s: Session): Promise<void> {
    let target: Target;
    try {
      target = await this.#o.upstream.resolve();
    } catch (e) {
      this.#dropped(s.key, (e as Error).message);
      this.#drop(s, 'no registrar');
      return;
    }
    if (this.#sessions.get(s.key) !== s) return; // evicted meanwhile
    const sock = createSocket({ type: isIPv6(target.host) ? 'udp6' : 'udp4' });
    s.socket = sock;
    sock.on('error', () => this.#drop(s, 'upstream socket error'));
    sock.on('message', (m) => {
      if (this.#sessions.get(s.key) !== s) return;
      s.lastSeen = Date.now();
      this.stats.datagrams['to-pledge']++;
      this.#o.tap?.('to-pledge', m);
      this.#socket.send(m, s.pledge.port, s.pledge.address);
    });
    sock.connect(target.port, target.host, () => {
      const queued = s.pending ?? [];
      s.pending = undefined;
      this.#o.onEvent?.({ kind: 'session-open', pledge: s.key, detail: `${target.host}:${target.port}` });
      for (const m of queued) { this.stats.datagrams['to-registrar']++; sock.send(m); }
    });
  }
}
