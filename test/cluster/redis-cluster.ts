/**
 * A real Redis Cluster for tests, made of local `redis-server` processes (no containers): N masters
 * on free ports (each also needs port+10000 for the cluster bus), joined with
 * `redis-cli --cluster create … --cluster-yes`, ready once every node reports cluster_state:ok.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, type TempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);

export interface ClusterNode { host: string; port: number }

export interface RedisClusterHandle {
  nodes: ClusterNode[];
  /** Keys held by each master (DBSIZE), in node order. */
  dbsizes(): Promise<number[]>;
  stop(): Promise<void>;
}

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A port p with p and p+10000 (cluster bus) both free a moment ago. */
async function clusterPort(host: string, taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 35_000);
    if (taken.has(p) || taken.has(p + 10_000) || taken.has(p - 10_000)) continue;
    if (await canBind(p, host) && await canBind(p + 10_000, host)) { taken.add(p); return p; }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

async function cli(node: ClusterNode, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], { timeout: 10_000 });
  return stdout;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try { if (await check()) return; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
}

export async function startRedisCluster(opts: { masters?: number; host?: string } = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  if (masters < 3) throw new RangeError('redis-cli --cluster create needs at least 3 masters');
  const host = opts.host ?? '127.0.0.1';
  const dir: TempDir = makeTempDir('brski-cluster-');
  const children: ChildProcess[] = [];
  const nodes: ClusterNode[] = [];
  const taken = new Set<number>();
  const killAll = (): void => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); };
  process.once('exit', killAll);

  try {
    for (let i = 0; i < masters; i++) {
      const port = await clusterPort(host, taken);
      const child = spawn('redis-server', [
        '--port', String(port), '--bind', host, '--dir', dir.path,
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir.path, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000',
        // AOF on as in production (deploy/redis/); fsync every second.
        '--appendonly', 'yes', '--appendfilename', `aof-${port}.aof`, '--appenddirname', `aof-${port}`, '--save', '',
        '--protected-mode', 'no', '--daemonize', 'no', '--logfile', join(dir.path, `redis-${port}.log`),
      ], { stdio: 'ignore' });
      children.push(child);
      nodes.push({ host, port });
    }
    for (const n of nodes) await waitFor(`redis ${n.port} PONG`, 10_000, async () => (await cli(n, 'ping')).trim() === 'PONG');
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 });
    // Every node must see all slots covered and every peer, else clients get MOVED loops / CLUSTERDOWN.
    for (const n of nodes) {
      await waitFor(`cluster_state:ok on ${n.port}`, 20_000, async () => {
        const info = await cli(n, 'cluster', 'info');
        return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)
          && new RegExp(`cluster_known_nodes:${masters}\\b`).test(info);
      });
    }
  } catch (e) {
    killAll();
    dir.cleanup();
    throw e;
  }

  return {
    nodes,
    async dbsizes() { return Promise.all(nodes.map(async (n) => Number((await cli(n, 'dbsize')).trim()))); },
    async stop() {
      await Promise.all(children.map((c) => new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) { resolve(); return; }
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
      })));
      process.off('exit', killAll);
      dir.cleanup();
    },
  };
}
