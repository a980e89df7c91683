/**
 * Profiling driver for the MASA voucher path (not a *.bench.ts: `npm run bench` does not run it).
 *   node --import tsx bench/masa-profile.ts [direct|https] [jws|cose|cms] [N] [memory|redis]
 * `direct` calls VoucherAuthority.requestVoucher in-process (no TLS/HTTP); `https` posts over
 * keep-alive mTLS from a separate client process (bench/masa-client.ts). Prints ops/s (wall) and
 * the MASA process's CPU µs per voucher (process.cpuUsage, user+system, all threads), which is
 * steadier than wall time on a shared machine.
 * PROFILE=<file.cpuprofile> records a CPU profile of the measured window only (not the setup);
 * PROFILE_INTERVAL_US sets its sampling interval (default 1000 µs).
 * HEAPPROF=<file.json> records a sampling allocation profile of the window, including objects the
 * GC has already collected (what the young generation churns through per voucher).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { MemoryMasaStore } from '../masa/src/store/memory.ts';
import { RedisMasaStore } from '../masa/src/store/redis.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { startMasa } from '../masa/test/helpers/harness.ts';
import { buildPvr, buildRvr, makePki, makePledge } from '../masa/test/helpers/pki.ts';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '../shared/src/media.ts';
import { certificatesToPem } from '../shared/src/pki/keys.ts';
import { startLoadClient } from './masa-client.ts';

const mode = (process.argv[2] ?? 'direct') as 'direct' | 'https';
const format = (process.argv[3] ?? 'jws') as VoucherFormat;
const N = Number(process.argv[4] ?? 3000);
const DEVICES = 100;
const CONCURRENCY = 32;

const storeKind = process.argv[5] ?? 'memory';
const redisServer = storeKind === 'redis' ? await startRedis() : undefined;
const redis = redisServer ? new Redis(redisServer.url) : undefined;
/** Commands the MASA sent, from Redis' own counters (EXEC = one pipelined read transaction, EVALSHA = one commit). */
async function commandStats(): Promise<Record<string, number>> {
  const text = await redis!.info('commandstats');
  return Object.fromEntries([...text.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}
const pki = await makePki();
const h = await startMasa(pki, redis ? new RedisMasaStore(redis) : new MemoryMasaStore());
try {
  const pledges = [];
  for (let i = 0; i < DEVICES; i++) {
    const pledge = await makePledge(pki);
    const reg = await h.admin('PUT', `/admin/devices/${pledge.serial}`,
      { certificate: Buffer.from(pledge.idevid.cert.raw).toString('base64'), productLine: 'bench', policy: 'open' });
    if (reg.status !== 201) throw new Error(`device import failed: ${reg.text}`);
    pledges.push(pledge);
  }
  const warm = CONCURRENCY * 2;
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < N + warm; i++) {
    const pledge = pledges[i % DEVICES]!;
    bodies.push(await buildRvr(format, pledge, pki.domainA, await buildPvr(format, pledge, pki.domainA.registrar)));
  }
  const type = VOUCHER_MEDIA_TYPE[format];
  const registrar = pki.domainA.registrar;
  let measure: () => Promise<void>;
  let close = () => {};
  if (mode === 'direct') {
    const peerChain = registrar.signer.certificates;
    let next = 0;
    const drain = async (until: number) => {
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < until) await h.masa.authority.requestVoucher({ contentType: type, accept: undefined, body: bodies[next++]!, peerChain });
      }));
    };
    await drain(warm);
    measure = () => drain(bodies.length);
  } else {
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    const client = await startLoadClient({ url: h.masa.url, caPem: certificatesToPem([pki.vendor.cert]), keyPem: registrar.keyPem,
      certPem: certificatesToPem(registrar.signer.certificates), contentType: type, concurrency: CONCURRENCY,
      warmup: bodies.slice(0, warm).map(b64), bodies: bodies.slice(warm).map(b64) });
    close = () => client.close();
    measure = async () => {
      const r = await client.run();
      if (r.failed) throw new Error(`${r.failed} failed: ${r.firstError}`);
      process.stdout.write(`client process: ${Math.round(r.cpuMicros / N)} µs CPU/request\n`);
    };
  }
  const session = process.env['PROFILE'] || process.env['HEAPPROF'] ? new Session() : undefined;
  if (session && process.env['PROFILE']) { session.connect(); await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: Number(process.env['PROFILE_INTERVAL_US'] ?? 1000) });
    await session.post('Profiler.start'); }
  if (session && process.env['HEAPPROF']) { session.connect(); await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true } as any); }
  const stats0 = redis ? await commandStats() : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await measure();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (session && process.env['PROFILE']) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(process.env['PROFILE']!, JSON.stringify(profile));
  }
  if (session && process.env['HEAPPROF']) {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(process.env['HEAPPROF']!, JSON.stringify(profile));
  }
  session?.disconnect();
  close();
  if (stats0) {
    const stats1 = await commandStats();
    const per = Object.entries(stats1).map(([k, v]) => [k, (v - (stats0[k] ?? 0)) / N] as const).filter(([k, v]) => v > 0 && k !== 'info');
    process.stdout.write(`redis commands per voucher: ${per.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}\n`);
  }
  const cpuUsPerOp = (cpu.user + cpu.system) / N;
  process.stdout.write(`${mode} ${format}: ${N} vouchers, ${Math.round(N / wall)}/s wall, ${Math.round(cpuUsPerOp)} µs MASA CPU/voucher `
    + `(${Math.round(1e6 / cpuUsPerOp)}/s per core)\n`);
} finally {
  await h.stop();
  await redis?.quit();
  await redisServer?.stop();
}
