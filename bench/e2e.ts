/**
 * `npm run bench:e2e`: full onboardings (voucher + EST) with MASA, registrar and the pledge fleet
 * in separate processes on a Redis store. Per format: a warm-up, then N pledges; prints
 * onboardings/s and p50/p99 per phase, and the failures by reason. Targets (issue 5): ≥ 300/s,
 * p99 < 250 ms, 0 errors on the 2-core reference machine — the figures printed are what was measured.
 *
 * Options: --count 1000 --concurrency 64 --formats jws,cms --procs 1 --warmup 50 --redis URL --json
 *          --cpu-prof DIR (profiles of MASA, registrar and fleet processes, for `node --cpu-prof`)
 * Also prints CPU ms per onboarding per process (from /proc, Linux): fleet figures include the
 * fleet process's start-up (~1–2 s of CPU), services only count the measured run.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Histogram } from '../pledge-sim/src/fleet/histogram.ts';
import { childrenOf, cpuOf, reapedChildrenCpu } from './proc-cpu.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { makeTempDir } from '../test/helpers/tmp.ts';
import { ServiceProcess, createE2ePki, freePort, masaYaml, registrarYaml, runBrski } from '../test/e2e/helpers/stack.ts';

const { values } = parseArgs({
  strict: true, options: {
    count: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '64' },
    formats: { type: 'string', default: 'jws,cms' }, procs: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '50' }, redis: { type: 'string' }, json: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const procs = Math.max(1, Number(values.procs));
const warmup = Number(values.warmup);
const formats = values.formats!.split(',').map((f) => f.trim()).filter(Boolean);
const log = (s: string): void => { if (!values.json) process.stderr.write(`${s}\n`); };

if (values['cpu-prof']) {
  const dir = resolve(values['cpu-prof']);
  mkdirSync(dir, { recursive: true });
  // Passed to every child process (services and fleets); NODE_OPTIONS does not allow --cpu-prof.
  process.env['BRSKI_E2E_NODE_ARGS'] = `--cpu-prof --cpu-prof-dir=${dir}`;
  log(`CPU profiles → ${dir}`);
}

const tmp = makeTempDir('brski-bench-e2e-');
const redis = values.redis ? undefined : await startRedis();
const redisUrl = values.redis ?? redis!.url;
const perFormat = warmup + count;
log(`bench:e2e: PKI with ${perFormat * formats.length} pledges in ${tmp.path}`);
const pki = await createE2ePki(tmp.path, perFormat * formats.length);
const masaPort = await freePort();
const regPort = await freePort();
const run = Date.now().toString(36);
const masa = new ServiceProcess('masa', masaYaml(pki, masaPort, redisUrl, `bench:${run}:masa:`));
const registrar = new ServiceProcess('registrar', registrarYaml(pki, { port: regPort, masaPort, redisUrl, prefix: `bench:${run}:reg:`, domain: 'bench' }));

interface Outcome { ok: boolean; reason?: string; timings?: Record<string, number> }
interface Row { format: string; count: number; onboarded: number; failed: number; seconds: number; throughput: number;
  latency: Record<string, { p50: number; p99: number; max: number }>; failures: Record<string, number>;
  /** CPU ms per onboarded pledge, per process (Linux /proc; fleet includes its process start-up). */
  cpuMsPerOnboarding?: Record<string, number> }

// CPU accounting: bench/proc-cpu.ts (Linux /proc).
/** Live child processes by role (masa, registrar, redis), from their command lines. */
function childPids(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of childrenOf(process.pid)) {
    let cmd: string[];
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (cmd.some((a) => a.includes('redis-server'))) out['redis'] = pid;
    else if (cmd.includes('masa')) out['masa'] = pid;
    else if (cmd.includes('registrar')) out['registrar'] = pid;
  }
  return out;
}
function cpuSnapshot(pids: Record<string, number>): Record<string, number> {
  return { ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid)])), fleet: reapedChildrenCpu() };
}

async function fleet(format: string, offset: number, n: number, tag: string): Promise<{ outcomes: Outcome[]; seconds: number }> {
  const share = Math.ceil(n / procs);
  const t0 = performance.now();
  const parts = await Promise.all(Array.from({ length: procs }, async (_, i) => {
    const c = Math.min(share, n - i * share);
    if (c <= 0) return [];
    const file = join(tmp.path, `outcomes-${tag}-${format}-${i}.json`);
    const r = await runBrski(['fleet', '--registrar', `https://127.0.0.1:${regPort}`, '--pki', pki.dir, '--offset', String(offset + i * share),
      '--count', String(c), '--concurrency', String(Math.max(1, Math.round(concurrency / procs))), '--format', format,
      '--retry-cap', '1', '--max-wait', '120', '--json', '--outcomes', file], 900_000);
    if (!r.json) throw new Error(`fleet process failed:\n${r.stdout}\n${r.stderr}`);
    return (JSON.parse(readFileSync(file, 'utf8')) as { outcomes: Outcome[] }).outcomes;
  }));
  return { outcomes: parts.flat(), seconds: (performance.now() - t0) / 1000 };
}

function summarise(format: string, outcomes: Outcome[], seconds: number): Row {
  const hist: Record<string, Histogram> = { tls: new Histogram(), voucher: new Histogram(), enroll: new Histogram(), total: new Histogram() };
  const failures: Record<string, number> = {};
  let ok = 0;
  for (const o of outcomes) {
    if (o.ok && o.timings) { ok++; for (const k of Object.keys(hist)) hist[k]!.record(o.timings[k] ?? NaN); }
    else failures[o.reason ?? 'error'] = (failures[o.reason ?? 'error'] ?? 0) + 1;
  }
  const latency = Object.fromEntries(Object.entries(hist).map(([k, h]) => { const s = h.stats(); return [k, { p50: s.p50, p99: s.p99, max: s.max }]; }));
  // Wall clock of the fleet processes, process start-up included (a conservative throughput).
  return { format, count: outcomes.length, onboarded: ok, failed: outcomes.length - ok, seconds, throughput: ok / seconds, latency, failures };
}

const rows: Row[] = [];
try {
  await masa.start();
  await registrar.start();
  log(`MASA :${masaPort}, registrar :${regPort}, Redis ${redisUrl}; ${count} pledges per format, concurrency ${concurrency}, ${procs} fleet process(es)`);
  const pids = childPids();
  let offset = 0;
  for (const format of formats) {
    if (warmup > 0) { await fleet(format, offset, warmup, 'warmup'); offset += warmup; }
    const before = cpuSnapshot(pids);
    const { outcomes, seconds } = await fleet(format, offset, count, 'run');
    const after = cpuSnapshot(pids);
    offset += count;
    const row = summarise(format, outcomes, seconds);
    if (row.onboarded > 0) {
      row.cpuMsPerOnboarding = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k]! - before[k]!) / row.onboarded]));
    }
    rows.push(row);
    const cpu = row.cpuMsPerOnboarding ? `; CPU ms/onboarding ${Object.entries(row.cpuMsPerOnboarding).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}` : '';
    log(`${format}: ${row.onboarded}/${row.count} onboarded in ${row.seconds.toFixed(2)} s → ${row.throughput.toFixed(1)} onboardings/s${cpu}`);
  }
} finally {
  await registrar.stop();
  await masa.stop();
  await redis?.stop();
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ count, concurrency, procs, formats, rows }, null, 2)}\n`);
} else {
  const f = (v: number): string => v.toFixed(1).padStart(8);
  const out: string[] = ['', 'format  onboarded  failed   per s  |   tls p50  tls p99 | vouch p50 vouch p99 | enrol p50 enrol p99 | total p50 total p99 (ms)'];
  for (const r of rows) {
    const L = r.latency;
    out.push(`${r.format.padEnd(6)} ${String(r.onboarded).padStart(9)} ${String(r.failed).padStart(7)} ${f(r.throughput)}  | ${f(L['tls']!.p50)} ${f(L['tls']!.p99)} | `
      + `${f(L['voucher']!.p50)} ${f(L['voucher']!.p99)} | ${f(L['enroll']!.p50)} ${f(L['enroll']!.p99)} | ${f(L['total']!.p50)} ${f(L['total']!.p99)}`);
    if (r.cpuMsPerOnboarding) out.push(`        CPU ms per onboarding: ${Object.entries(r.cpuMsPerOnboarding).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    if (r.failed) out.push(`        failures: ${Object.entries(r.failures).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  out.push('', 'targets: ≥ 300 onboardings/s, p99 < 250 ms, 0 errors (2-core reference machine)');
  process.stdout.write(`${out.join('\n')}\n`);
}
tmp.cleanup();
process.exit(rows.every((r) => r.failed === 0) ? 0 : 1);
