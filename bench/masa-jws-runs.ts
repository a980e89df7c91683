/**
 * Repeated JWS cluster runs (the issue-3 row of `npm run bench -- masa`), for comparing a change
 * against the run-to-run drift of a shared machine:
 *   npx tsx bench/masa-jws-runs.ts [runs]
 * Env: MASA_RUNS_N measured requests per run (6000), MASA_RUNS_WARM warm-up requests
 * (CLUSTER_WARMUP_REQUESTS), MASA_BENCH_NODE_ARGS extra node flags for the MASA processes.
 * Each run starts a fresh MASA; its warm-up curve is printed too (the cold-start figure).
 */
import { startRedis } from '../test/helpers/redis.ts';
import { makePki } from '../masa/test/helpers/pki.ts';
import { measureCluster } from './masa-cluster.ts';

const runs = Number(process.argv[2] ?? 3);
const warm = process.env['MASA_RUNS_WARM'];
const pki = await makePki();
const redis = await startRedis();
try {
  for (let i = 0; i < runs; i++) {
    const m = await measureCluster(pki, { format: 'jws', workers: 2, redisUrl: redis.url, n: Number(process.env['MASA_RUNS_N'] ?? 6000),
      devices: 100, concurrency: 128, ...(warm ? { warmup: Number(warm) } : {}) });
    const s = m.split;
    console.log(`run ${i + 1}/${runs}: ${Math.round(m.opsPerSec)} vouchers/s, MASA ${Math.round(m.cpuMicrosPerVoucher)} µs CPU/voucher `
      + `(user ${Math.round(s.userMs)}, sys ${Math.round(s.systemMs)}; context switches ${s.voluntarySwitches.toFixed(2)} voluntary, `
      + `${s.involuntarySwitches.toFixed(2)} involuntary), Redis ${Math.round(m.redisMicrosPerVoucher)} µs, client ${Math.round(m.clientMicrosPerVoucher)} µs, `
      + `p50 ${m.p50Ms.toFixed(1)} ms, p99 ${m.p99Ms.toFixed(1)} ms`);
    console.log(`  Redis commands per voucher (inside scripts included): ${JSON.stringify(m.redisCallsPerVoucher)}`);
    console.log(`  warm-up, vouchers/s per 2,000 requests from the MASA's start: ${m.warmupRates.map(Math.round).join(' → ')}`);
  }
} finally {
  await redis.stop();
}
