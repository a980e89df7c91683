/**
 * Load generator for the MASA benchmarks, run in a CHILD PROCESS so that the number measures the
 * MASA and not the client sharing its event loop (on a 2-core machine the client takes the other
 * core), and so that process.cpuUsage() in the parent is the MASA's CPU alone.
 *
 * Parent side: `startLoadClient(...)` forks this file, hands it the TLS credentials and the
 * pre-signed request bodies, waits for the warm-up, then `run()` fires them all over keep-alive
 * mTLS with a fixed concurrency and resolves with the result.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

export interface LoadSetup {
  url: string; caPem: string; keyPem: string; certPem: string; contentType: string; concurrency: number;
  /**
   * Posted before the clock starts: TLS handshakes, and V8's tier-up of the request path. A fresh
   * MASA process needs several thousand requests before TurboFan has compiled the hot code
   * (docs/performance.md, round 8), and the rate climbs by ~40 % meanwhile.
   */
  warmup: string[];
  /** base64 bodies, one per request. */
  bodies: string[];
}

export interface LoadResult { ok: number; failed: number; firstError?: string; seconds: number; /** the client's own CPU µs */ cpuMicros: number;
  /** request latency percentiles, ms */ p50: number; p99: number;
  /** completed requests per second in consecutive windows of WINDOW_REQUESTS (a last partial window is left out) */ windowRates: number[] }

/** Size of the windows in LoadResult.windowRates. */
export const WINDOW_REQUESTS = 2000;

type ToChild = { kind: 'setup'; setup: LoadSetup } | { kind: 'go' };
type FromChild = { kind: 'ready'; warmup: LoadResult } | { kind: 'done'; result: LoadResult } | { kind: 'error'; message: string };

export interface LoadClient {
  /** How the warm-up went: its windowRates show the climb from a cold process to steady state. */
  readonly warmup: LoadResult;
  run(): Promise<LoadResult>;
  close(): void;
}

export async function startLoadClient(setup: LoadSetup): Promise<LoadClient> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const next = (): Promise<FromChild> => new Promise((resolve, reject) => {
    const onMsg = (m: FromChild) => { cleanup(); resolve(m); };
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`load client exited (${code})`)); };
    const cleanup = () => { child.off('message', onMsg); child.off('exit', onExit); };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
  const ready = next();
  child.send({ kind: 'setup', setup } satisfies ToChild);
  const first = await ready;
  if (first.kind !== 'ready') { child.kill(); throw new Error(`load client: ${first.kind === 'error' ? first.message : 'unexpected message'}`); }
  return {
    warmup: first.warmup,
    async run() {
      const done = next();
      child.send({ kind: 'go' } satisfies ToChild);
      const m = await done;
      if (m.kind !== 'done') throw new Error(`load client: ${m.kind === 'error' ? m.message : 'unexpected message'}`);
      return m.result;
    },
    close() { child.kill(); },
  };
}

// ---- child --------------------------------------------------------------------------------------

/**
 * One keep-alive mTLS connection with one request in flight, written as pre-built HTTP/1.1 bytes
 * and read with a minimal response parser: node:https' client machinery (agent, ClientRequest,
 * IncomingMessage) cost ~250 µs CPU per request, which on a 2-core machine is CPU taken from the
 * MASA being measured (this client: ~55 µs). wrk/autocannon do the same; they are not available
 * here with client certificates, hence this small client.
 */
class RawConnection {
  #socket: tls.TLSSocket | undefined;
  #chunks: Buffer[] = [];
  #have = 0;
  #waiting: { resolve(r: { status: number; text: string }): void; reject(e: Error): void } | undefined;
  constructor(private readonly s: LoadSetup, private readonly host: string, private readonly port: number) {}

  async #connect(): Promise<tls.TLSSocket> {
    const socket = tls.connect({ host: this.host, port: this.port, servername: 'localhost', ca: this.s.caPem, key: this.s.keyPem, cert: this.s.certPem });
    await once(socket, 'secureConnect');
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => { this.#chunks.push(c); this.#have += c.length; this.#parse(); });
    const fail = (e: Error): void => { this.#socket = undefined; const w = this.#waiting; this.#waiting = undefined; w?.reject(e); };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
    return socket;
  }

  #parse(): void {
    const w = this.#waiting;
    if (!w) return;
    const buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    this.#chunks = [buf];
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.subarray(0, end).toString('latin1');
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const length = m ? Number(m[1]) : 0;
    if (this.#have < end + 4 + length) return;
    const status = Number(head.slice(9, 12));
    const text = status === 200 ? '' : buf.subarray(end + 4, end + 4 + length).toString('utf8');
    this.#chunks = [];
    this.#have = 0;
    this.#waiting = undefined;
    w.resolve({ status, text });
  }

  async request(bytes: Buffer): Promise<{ status: number; text: string }> {
    this.#socket ??= await this.#connect();
    const socket = this.#socket;
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      socket.write(bytes);
    });
  }

  close(): void { this.#socket?.destroy(); }
}

function requestBytes(s: LoadSetup, body: Buffer): Buffer {
  const head = `POST /.well-known/brski/requestvoucher HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${s.contentType}\r\n`
    + `Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

async function child(): Promise<void> {
  let setup: LoadSetup | undefined;
  let conns: RawConnection[] = [];
  let requests: Buffer[] = [];
  const send = (m: FromChild) => process.send!(m);
  process.on('message', (m: ToChild) => {
    void (async () => {
      try {
        if (m.kind === 'setup') {
          setup = m.setup;
          const u = new URL(setup.url);
          conns = Array.from({ length: setup.concurrency }, () => new RawConnection(setup!, u.hostname, Number(u.port)));
          requests = setup.bodies.map((b) => requestBytes(setup!, Buffer.from(b, 'base64')));
          const warm = setup.warmup.map((b) => requestBytes(setup!, Buffer.from(b, 'base64')));
          const r = await drive(conns, warm);
          if (r.failed) throw new Error(`warm-up: ${r.failed} failed: ${r.firstError}`);
          send({ kind: 'ready', warmup: r });
        } else {
          send({ kind: 'done', result: await drive(conns, requests) });
          for (const c of conns) c.close();
        }
      } catch (e) {
        send({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
}

async function drive(conns: RawConnection[], requests: Buffer[]): Promise<LoadResult> {
  let next = 0; let ok = 0; let failed = 0; let firstError: string | undefined;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const latencies = new Float64Array(requests.length);
  const windowRates: number[] = [];
  let windowStart = start;
  await Promise.all(conns.map(async (conn) => {
    while (next < requests.length) {
      const i = next++;
      const t0 = performance.now();
      const r = await conn.request(requests[i]!).catch((e: Error) => ({ status: 0, text: e.message }));
      latencies[i] = performance.now() - t0;
      if (r.status === 200) ok++;
      else { failed++; firstError ??= `HTTP ${r.status}: ${r.text.slice(0, 300)}`; }
      if ((ok + failed) % WINDOW_REQUESTS === 0) {
        const now = performance.now();
        windowRates.push(WINDOW_REQUESTS / ((now - windowStart) / 1000));
        windowStart = now;
      }
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  latencies.sort();
  const pct = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { ok, failed, seconds: (performance.now() - start) / 1000, cpuMicros: cpu.user + cpu.system, p50: pct(0.5), p99: pct(0.99),
    windowRates, ...(firstError ? { firstError } : {}) };
}

if (process.argv.includes('--child') && process.send) void child();
