/**
 * A real Redis for tests. Tries testcontainers (a throw-away `redis:7` container) when a container
 * runtime answers quickly, else spawns the local `redis-server` on a free port with its data in a
 * temp dir. Set BRSKI_TEST_REDIS=local or =testcontainers to force one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './ports.ts';
import { makeTempDir, type TempDir } from './tmp.ts';

export interface StartRedisOptions {
  /** Append-only file on (default true), so `restart()` keeps data. */
  aof?: boolean;
  /** Milliseconds to wait for the container runtime to answer before falling back. Default 3000. */
  runtimeProbeMs?: number;
}

export interface RedisHandle {
  /** redis://host:port — read again after restart(): a container may be remapped. */
  url: string;
  host: string;
  port: number;
  kind: 'testcontainers' | 'local';
  stop(): Promise<void>;
  /** Graceful stop (AOF flushed) and start on the same port and data. */
  restart(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open but nothing answers. Local only. */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

const REDIS_IMAGE = 'redis:7.2-alpine';
const children = new Set<ChildProcess>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // Synchronous kill: 'exit' handlers cannot await. Temp dirs are removed by tmp.ts.
  process.once('exit', () => { for (const c of children) c.kill('SIGKILL'); });
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisHandle> {
  const forced = process.env['BRSKI_TEST_REDIS'];
  if (forced !== 'local') {
    try {
      const handle = await startContainer(opts);
      if (handle) return handle;
    } catch (err) {
      if (forced === 'testcontainers') throw err;
    }
    if (forced === 'testcontainers') throw new Error('BRSKI_TEST_REDIS=testcontainers but no container runtime answered');
  }
  return startLocal(opts);
}

// ---------------------------------------------------------------------------------------------
// testcontainers

async function startContainer(opts: StartRedisOptions): Promise<RedisHandle | undefined> {
  const tc = await import('testcontainers');
  const probe = tc.getContainerRuntimeClient();
  probe.catch(() => undefined);
  const runtime = await Promise.race([
    probe,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), opts.runtimeProbeMs ?? 3_000).unref()),
  ]);
  if (!runtime) return undefined;
  const { RedisContainer } = await import('@testcontainers/redis');
  const aof = opts.aof ?? true;
  const container = await new RedisContainer(REDIS_IMAGE)
    .withCommand(['redis-server', '--save', '', '--appendonly', aof ? 'yes' : 'no'])
    .start();
  const handle: RedisHandle = {
    kind: 'testcontainers',
    host: container.getHost(),
    port: container.getPort(),
    url: container.getConnectionUrl(),
    async stop() { await container.stop(); },
    async restart() {
      await container.restart();
      handle.host = container.getHost();
      handle.port = container.getPort();
      handle.url = container.getConnectionUrl();
      await waitForPing(handle.host, handle.port, 30_000);
    },
    async pause() { throw new Error('pause() is only supported for a local redis-server'); },
    async resume() { throw new Error('resume() is only supported for a local redis-server'); },
  };
  return handle;
}

// ---------------------------------------------------------------------------------------------
// local redis-server

async function startLocal(opts: StartRedisOptions): Promise<RedisHandle> {
  hookExit();
  const host = '127.0.0.1';
  const port = await freePort(host);
  const dir: TempDir = makeTempDir('brski-redis-');
  const args = ['--port', String(port), '--bind', host, '--save', '', '--appendonly', (opts.aof ?? true) ? 'yes' : 'no',
    '--dir', dir.path, '--daemonize', 'no', '--logfile', '', '--loglevel', 'warning'];
  let child: ChildProcess | undefined;
  let stopped = false;

  async function launch(): Promise<void> {
    const c = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    child = c;
    let output = '';
    c.stdout?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
    c.stderr?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
    const exited = new Promise<never>((_, reject) => {
      c.once('error', (err) => reject(new Error(`cannot run redis-server: ${err.message}`)));
      c.once('exit', (code, signal) => {
        children.delete(c);
        reject(new Error(`redis-server exited (code ${code}, signal ${signal}): ${output.trim()}`));
      });
    });
    exited.catch(() => undefined);
    await Promise.race([waitForPing(host, port, 15_000), exited]);
  }

  async function terminate(signal: NodeJS.Signals): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }

  await launch();
  return {
    kind: 'local',
    host,
    port,
    url: `redis://${host}:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate('SIGTERM');
      dir.cleanup();
    },
    async restart() {
      if (stopped) throw new Error('redis was stopped');
      // SIGTERM makes redis fsync the AOF and exit cleanly, so data written before survives.
      await terminate('SIGTERM');
      await launch();
    },
    async pause() { child?.kill('SIGSTOP'); },
    async resume() { child?.kill('SIGCONT'); },
  };
}

/** Resolves once `PING` answers `+PONG` on host:port; rejects after `timeoutMs`. */
export async function waitForPing(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      if (await pingOnce(host, port)) return;
      last = 'not ready';
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis at ${host}:${port} did not answer PING within ${timeoutMs} ms (${last})`);
}

function pingOnce(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let data = '';
    const done = (v: boolean | Error): void => {
      sock.destroy();
      if (v instanceof Error) reject(v); else resolve(v);
    };
    sock.setTimeout(1_000, () => done(new Error('timeout')));
    sock.once('error', done);
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}
