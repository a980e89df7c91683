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
import https from 'node:https';
import { fileURLToPath } from 'node:url';

export interface LoadSetup {
  url: string; caPem: string; keyPem: string; certPem: string; contentType: string; concurrency: number;
  /** Posted before the clock starts (TLS handshakes, JIT). */
  warmup: string[];
  /** base64 bodies, one per request. */
  bodies: string[];
}

export interface LoadResult { ok: number; failed: number; firstError?: string; seconds: number; /** the client's own CPU µs */ cpuMicros: number }

type ToChild = { kind: 'setup'; setup: LoadSetup } | { kind: 'go' };
type FromChild = { kind: 'ready' } | { kind: 'done'; result: LoadResult } | { kind: 'error'; message: string };

export interface LoadClient { run(): Promise<LoadResult>; close(): void }

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

function post(agent: https.Agent, url: string, body: Buffer, type: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', agent, headers: { 'content-type': type, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: res.statusCode === 200 ? '' : Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function child(): Promise<void> {
  let setup: LoadSetup | undefined;
  let agent: https.Agent | undefined;
  let bodies: Buffer[] = [];
  const send = (m: FromChild) => process.send!(m);
  process.on('message', (m: ToChild) => {
    void (async () => {
      try {
        if (m.kind === 'setup') {
          setup = m.setup;
          agent = new https.Agent({ keepAlive: true, maxSockets: setup.concurrency, ca: setup.caPem, key: setup.keyPem,
            cert: setup.certPem, servername: 'localhost' });
          bodies = setup.bodies.map((b) => Buffer.from(b, 'base64'));
          const warm = setup.warmup.map((b) => Buffer.from(b, 'base64'));
          const r = await drive(agent, setup, warm);
          if (r.failed) throw new Error(`warm-up: ${r.failed} failed: ${r.firstError}`);
          send({ kind: 'ready' });
        } else {
          send({ kind: 'done', result: await drive(agent!, setup!, bodies) });
        }
      } catch (e) {
        send({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
}

async function drive(agent: https.Agent, s: LoadSetup, bodies: Buffer[]): Promise<LoadResult> {
  const url = `${s.url}/.well-known/brski/requestvoucher`;
  let next = 0; let ok = 0; let failed = 0; let firstError: string | undefined;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: s.concurrency }, async () => {
    while (next < bodies.length) {
      const r = await post(agent, url, bodies[next++]!, s.contentType);
      if (r.status === 200) ok++;
      else { failed++; firstError ??= `HTTP ${r.status}: ${r.text.slice(0, 300)}`; }
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { ok, failed, seconds: (performance.now() - start) / 1000, cpuMicros: cpu.user + cpu.system, ...(firstError ? { firstError } : {}) };
}

if (process.argv.includes('--child') && process.send) void child();
