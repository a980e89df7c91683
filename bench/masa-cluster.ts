/**
 * The MASA as operators run it for throughput: `brski masa --config … ` in its own process tree
 * with listen.workers = N on the Redis store, loaded by the raw keep-alive mTLS client of
 * masa-client.ts. Used by masa.bench.ts; CPU is read from /proc for the whole MASA tree (primary
 * and workers), so the figure is the service's cost per voucher, not the bench's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '../shared/src/media.ts';
import { certificatesToPem } from '../shared/src/pki/keys.ts';
import { freePort } from '../test/helpers/ports.ts';
import { makeTempDir } from '../test/helpers/tmp.ts';
import { TlsClient } from '../masa/test/helpers/client.ts';
import { buildPvr, buildRvr, makePledge, writeMasaFiles, type TestPki } from '../masa/test/helpers/pki.ts';
import { startLoadClient } from './masa-client.ts';
import { treeCpuMs, treeCpuSplit, type TreeCpuSplit } from './proc-cpu.ts';

const ROOT = resolve(import.meta.dirname, '..');
export interface ClusterRun { opsPerSec: number; cpuMicrosPerVoucher: number; clientMicrosPerVoucher: number; redisMicrosPerVoucher: number;
  p50Ms: number; p99Ms: number; redisCallsPerVoucher: Record<string, number>;
  /** The MASA tree's user / system CPU and context switches, per voucher (µs and counts). */
  split: TreeCpuSplit;
  /** vouchers/s in consecutive 2,000-request windows of the warm-up, from the MASA's first request on */
  warmupRates: number[] }

/**
 * Requests posted before the clock starts. TurboFan compiles the request path over the first
 * few thousand requests of each worker (docs/performance.md, round 8: ~1,200 functions optimized
 * in the first 4 s of load); 12,000 over two workers ends past that. MASA_BENCH_WARMUP overrides.
 */
export const CLUSTER_WARMUP_REQUESTS = Number(process.env['MASA_BENCH_WARMUP'] ?? 12_000);

/** Redis commands executed so far, by name (INFO commandstats; commands run inside scripts included). */
async function redisCalls(redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats');
  return Object.fromEntries([...text.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Redis server CPU (user+sys) in µs, from INFO cpu. */
async function redisCpuMicros(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const f = (k: string): number => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (f('used_cpu_user') + f('used_cpu_sys')) * 1e6;
}

export async function measureCluster(pki: TestPki, o: { format: VoucherFormat; workers: number; redisUrl: string; n: number;
  devices: number; concurrency: number; warmup?: number }): Promise<ClusterRun> {
  const dir = makeTempDir('masa-bench-cluster-');
  const port = await freePort();
  const adminPort = await freePort();
  const raw = writeMasaFiles(pki, dir.path) as Record<string, any>;
  raw['listen'] = { host: '127.0.0.1', port, workers: o.workers };
  raw['admin'] = { ...raw['admin'], port: adminPort };
  raw['store'] = { type: 'redis', url: o.redisUrl, prefix: `bench:${Date.now().toString(36)}:` };
  raw['log'] = { level: (process.env['MASA_BENCH_LOG'] ?? 'info') as string }; // production default: one "voucher issued" line per voucher
  writeFileSync(join(dir.path, 'masa.yaml'), stringify(raw));
  const logFile = join(dir.path, 'masa.log');
  const child: ChildProcess = spawn(process.execPath, [...(process.env['MASA_BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), join(ROOT, 'bin/brski.mjs'), 'masa', '--config', join(dir.path, 'masa.yaml')],
    { cwd: ROOT, stdio: ['ignore', openSync(logFile, 'w'), 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  try {
    // Ready when the admin listener answers /healthz (any log level); with several workers the
    // warm-up below spreads the client's connections once every worker listens.
    const admin = new TlsClient(`https://127.0.0.1:${adminPort}`, pki.vendor.cert);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await admin.request('GET', '/healthz').then((r) => r.status === 200, () => false);
      if (ok) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`MASA did not start: ${stderr}${readFileSync(logFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const pledges = [];
    try {
      for (let i = 0; i < o.devices; i++) {
        const pledge = await makePledge(pki);
        const r = await admin.request('PUT', `/admin/devices/${pledge.serial}`, JSON.stringify({
          certificate: Buffer.from(pledge.idevid.cert.raw).toString('base64'), productLine: 'bench', policy: 'open' }),
        { authorization: `Bearer ${String(raw['admin'].token)}`, 'content-type': 'application/json' });
        if (r.status !== 201) throw new Error(`device import failed: ${r.status} ${r.text}`);
        pledges.push(pledge);
      }
    } finally { admin.close(); }
    const warm = Math.max(o.warmup ?? CLUSTER_WARMUP_REQUESTS, o.concurrency * 4 * o.workers);
    const bodies: string[] = [];
    for (let i = 0; i < o.n + warm; i++) {
      const pledge = pledges[i % pledges.length]!;
      const rvr = await buildRvr(o.format, pledge, pki.domainA, await buildPvr(o.format, pledge, pki.domainA.registrar));
      bodies.push(Buffer.from(rvr).toString('base64'));
    }
    const registrar = pki.domainA.registrar;
    const client = await startLoadClient({ url: `https://127.0.0.1:${port}`, caPem: certificatesToPem([pki.vendor.cert]), keyPem: registrar.keyPem,
      certPem: certificatesToPem(registrar.signer.certificates), contentType: VOUCHER_MEDIA_TYPE[o.format], concurrency: o.concurrency,
      warmup: bodies.slice(0, warm), bodies: bodies.slice(warm) });
    try {
      const redis = new Redis(o.redisUrl);
      const redis0 = await redisCpuMicros(redis);
      const calls0 = await redisCalls(redis);
      const cpu0 = treeCpuMs(child.pid!);
      const split0 = treeCpuSplit(child.pid!);
      const r = await client.run();
      const cpuMs = treeCpuMs(child.pid!) - cpu0;
      const split1 = treeCpuSplit(child.pid!);
      const per = (k: keyof TreeCpuSplit, scale: number): number => ((split1[k] - split0[k]) * scale) / Math.max(1, r.ok);
      const split: TreeCpuSplit = { userMs: per('userMs', 1000), systemMs: per('systemMs', 1000),
        voluntarySwitches: per('voluntarySwitches', 1), involuntarySwitches: per('involuntarySwitches', 1) };
      const redisMicros = await redisCpuMicros(redis) - redis0;
      const calls1 = await redisCalls(redis);
      const redisCallsPerVoucher = Object.fromEntries(Object.entries(calls1).filter(([k]) => k !== 'info')
        .map(([k, v]) => [k, Math.round((100 * (v - (calls0[k] ?? 0))) / Math.max(1, r.ok)) / 100]).filter(([, v]) => (v as number) > 0));
      await redis.quit();
      if (r.failed) throw new Error(`${r.failed} of ${o.n} ${o.format} requests failed: ${r.firstError}`);
      return { opsPerSec: r.ok / r.seconds, cpuMicrosPerVoucher: (cpuMs * 1000) / r.ok, clientMicrosPerVoucher: r.cpuMicros / r.ok,
        redisMicrosPerVoucher: redisMicros / r.ok, p50Ms: r.p50, p99Ms: r.p99, redisCallsPerVoucher, split,
        warmupRates: client.warmup.windowRates };
    } finally {
      client.close();
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    if (process.env["MASA_BENCH_KEEP"]) copyFileSync(logFile, process.env["MASA_BENCH_KEEP"]);
    dir.cleanup();
  }
}
