/**
 * The TCP circuit proxy of RFC 8995 §4.1: each pledge connection is relayed byte for byte to the
 * registrar. TLS is not terminated — the pledge's handshake, certificates and HTTP stay end to end
 * between pledge and registrar, and the proxy holds no key. Each direction is framed into TLS
 * records only to refuse non-TLS streams (the proxy must not become an open relay into the
 * registrar's network) and to count what passed.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { NotTlsError, TlsRecordFramer } from './records.ts';
import type { RegistrarLocator, Target } from './upstream.ts';

export type Direction = 'to-registrar' | 'to-pledge';

export interface CircuitEvent {
  kind: 'open' | 'close' | 'refused' | 'upstream-failed';
  pledge: string;
  registrar?: string;
  detail?: string;
}

export interface CircuitOptions {
  listen: { host: string; port: number };
  upstream: RegistrarLocator;
  /** A circuit with no bytes in either direction for this long is closed (default 120 s). */
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Concurrent circuits; more are refused (default 1024). */
  maxConnections?: number;
  /** Sees every relayed chunk (tests and debugging; the bytes are TLS records, never plaintext). */
  tap?: (dir: Direction, bytes: Buffer) => void;
  onEvent?: (e: CircuitEvent) => void;
}

export interface CircuitStats {
  active: number;
  opened: number;
  refused: number;
  upstreamFailures: number;
  bytes: Record<Direction, number>;
  /** TLS records relayed, by content type. */
  records: Record<Direction, Record<number, number>>;
}

class TlsOnly extends Transform {
  readonly framer: TlsRecordFramer;
  constructor(private readonly dir: Direction, private readonly circuit: CircuitRelay) {
    super();
    this.framer = new TlsRecordFramer({ firstMustBeHandshake: dir === 'to-registrar' });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.framer.feed(chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.circuit.account(this.dir, chunk, this.framer);
    cb(null, chunk);
  }
}

export class CircuitRelay {
  readonly #o: CircuitOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly stats: CircuitStats = {
    active: 0, opened: 0, refused: 0, upstreamFailures: 0,
    bytes: { 'to-registrar': 0, 'to-pledge': 0 }, records: { 'to-registrar': {}, 'to-pledge': {} },
  };
  #port = 0;

  constructor(o: CircuitOptions) {
    this.#o = o;
    // Paused until the upstream connection exists, so nothing is read (or buffered) before.
    this.#server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => this.#accept(s));
  }

  get port(): number { return this.#port; }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.listen.port, this.#o.listen.host, () => {
        this.#server.off('error', reject);
        const a = this.#server.address();
        this.#port = typeof a === 'object' && a ? a.port : 0;
        resolve(this.#port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
    });
  }

  /** Called by the per-direction transforms. */
  account(dir: Direction, chunk: Buffer, framer: TlsRecordFramer): void {
    this.stats.bytes[dir] += chunk.length;
    const rec = this.stats.records[dir];
    for (const [t, n] of framer.counts) rec[t] = (rec[t] ?? 0) + n;
    framer.counts.clear();
    this.#o.tap?.(dir, chunk);
  }

  #accept(pledge: Socket): void {
    const who = `${pledge.remoteAddress}:${pledge.remotePort}`;
    if (this.stats.active >= (this.#o.maxConnections ?? 1024)) {
      this.stats.refused++;
      this.#o.onEvent?.({ kind: 'refused', pledge: who, detail: 'too many circuits' });
      pledge.destroy();
      return;
    }
    this.stats.active++;
    this.#sockets.add(pledge);
    pledge.setNoDelay(true);
    pledge.on('error', () => { /* reported through close */ });
    pledge.once('close', () => { this.#sockets.delete(pledge); });
    void this.#connect(pledge, who);
  }

  async #connect(pledge: Socket, who: string): Promise<void> {
    let target: Target;
    let upstream: Socket;
    try {
      target = await this.#o.upstream.resolve();
      upstream = await this.#dial(target);
    } catch (e) {
      this.stats.upstreamFailures++;
      this.stats.active--;
      this.#o.onEvent?.({ kind: 'upstream-failed', pledge: who, detail: (e as Error).message });
      pledge.destroy();
      return;
    }
    if (pledge.destroyed) { upstream.destroy(); this.stats.active--; return; }
    this.#sockets.add(upstream);
    this.stats.opened++;
    const registrar = `${target.host}:${target.port}`;
    this.#o.onEvent?.({ kind: 'open', pledge: who, registrar });
    const up = new TlsOnly('to-registrar', this);
    const down = new TlsOnly('to-pledge', this);
    let closed = false;
    const teardown = (reason?: Error): void => {
      if (closed) return;
      closed = true;
      this.stats.active--;
      if (reason instanceof NotTlsError) this.stats.refused++;
      this.#o.onEvent?.({
        kind: reason instanceof NotTlsError ? 'refused' : 'close', pledge: who, registrar,
        ...(reason ? { detail: reason.message } : {}),
      });
      for (const s of [pledge, upstream, up, down]) s.destroy();
      this.#sockets.delete(upstream);
    };
    for (const s of [pledge, upstream, up, down]) s.once('error', (e: Error) => teardown(e));
    upstream.on('close', () => teardown());
    pledge.on('close', () => teardown());
    const idle = this.#o.idleTimeoutMs ?? 120_000;
    for (const s of [pledge, upstream]) {
      s.setTimeout(idle, () => teardown(new Error(`idle for ${idle} ms`)));
    }
    // pipe() carries half-close (FIN) through and applies back-pressure both ways.
    pledge.pipe(up).pipe(upstream);
    upstream.pipe(down).pipe(pledge);
  }

  #dial(t: Target): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ host: t.host, port: t.port, allowHalfOpen: true, noDelay: true });
      const timer = setTimeout(() => s.destroy(new Error(`registrar ${t.host}:${t.port} did not accept within ${this.#o.connectTimeoutMs ?? 10_000} ms`)),
        this.#o.connectTimeoutMs ?? 10_000);
      s.once('connect', () => { clearTimeout(timer); s.removeListener('error', onError); resolve(s); });
      const onError = (e: Error): void => { clearTimeout(timer); this.#o.upstream.invalidate(t); reject(e); };
      s.once('error', onError);
    });
  }
}
