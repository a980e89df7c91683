/**
 * MASA voucher issuance per second over keep-alive HTTPS with client certificates, per format:
 * first as operators run it for throughput (`brski masa` with listen.workers 2 on Redis, its own
 * process tree; masa-cluster.ts), then one in-process MASA per format on the memory store, the
 * first-request-of-each-device case, and one process on Redis. Requests (PVR + RVR, fresh nonce each) are signed
 * before the clock starts, and sent by a separate client process (masa-client.ts), so the number
 * measures the MASA rather than a client sharing its event loop. The note gives the MASA
 * process's CPU time per voucher (process.cpuUsage), which is steadier than ops/s on a shared machine.
 */
import { Redis } from 'ioredis';
import { clearCertificateCache } from '../shared/src/envelope/cert-cache.ts';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '../shared/src/media.ts';
import { clearChainCache } from '../shared/src/pki/chain.ts';
import { clearCertificateInfoCache } from '../shared/src/pki/identity.ts';
import { certificatesToPem } from '../shared/src/pki/keys.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { MemoryMasaStore } from '../masa/src/store/memory.ts';
import { RedisMasaStore } from '../masa/src/store/redis.ts';
import type { MasaStore } from '../masa/src/store/types.ts';
import { startMasa } from '../masa/test/helpers/harness.ts';
import { buildPvr, buildRvr, makePki, makePledge, type TestPki } from '../masa/test/helpers/pki.ts';
import { startLoadClient } from './masa-client.ts';
import { CLUSTER_WARMUP_REQUESTS, measureCluster } from './masa-cluster.ts';

const N = Number(process.env['MASA_BENCH_N'] ?? 3000);
const CONCURRENCY = 32;
const DEVICES = 100;

interface Measured { opsPerSec: number; cpuMicrosPerVoucher: number }

/**
 * `devices`: how many distinct devices the N requests come from. DEVICES (100) = a fleet asking
 * repeatedly (certificate facts cached after the first request); N = every request from a device
 * the MASA process has not seen yet, as in production, where each pledge asks about once.
 */
async function measure(pki: TestPki, store: MasaStore, format: VoucherFormat, devices = DEVICES, n = N): Promise<Measured> {
  const h = await startMasa(pki, store);
  try {
    // A fleet of devices, several requests each (fresh nonce every time), interleaved.
    const pledges = [];
    for (let i = 0; i < devices; i++) pledges.push(await makePledgeFor(h, pki));
    // TLS handshakes for the pool and V8's tier-up of the request path (one process here, so as many
    // requests as each of the cluster's two workers gets); the fresh-device row warms up with
    // devices of its own, so it keeps a short warm-up.
    const warm = devices >= n ? CONCURRENCY * 2 : Math.ceil(CLUSTER_WARMUP_REQUESTS / 2);
    const bodies: string[] = [];
    for (let i = 0; i < n + warm; i++) {
      // A fresh-device run warms up with devices of its own, so the measured ones stay unseen.
      const pledge = i < warm && devices >= n ? await makePledgeFor(h, pki) : pledges[i % devices]!;
      const rvr = await buildRvr(format, pledge, pki.domainA, await buildPvr(format, pledge, pki.domainA.registrar));
      bodies.push(Buffer.from(rvr).toString('base64'));
    }
    if (devices >= n) {
      // Importing the devices (and signing their requests) parsed their certificates in this
      // process; production sees a pledge's IDevID for the first time in its voucher-request.
      clearCertificateCache(); clearCertificateInfoCache(); clearChainCache();
    }
    const registrar = pki.domainA.registrar;
    const client = await startLoadClient({ url: h.masa.url, caPem: certificatesToPem([pki.vendor.cert]), keyPem: registrar.keyPem,
      certPem: certificatesToPem(registrar.signer.certificates), contentType: VOUCHER_MEDIA_TYPE[format], concurrency: CONCURRENCY,
      warmup: bodies.slice(0, warm), bodies: bodies.slice(warm) });
    try {
      const cpu0 = process.cpuUsage();
      const r = await client.run();
      const cpu = process.cpuUsage(cpu0);
      if (r.failed) {
        const e = h.logs.find((l) => l['level'] === 'error');
        throw new Error(`${r.failed} of ${n} ${format} requests failed: ${r.firstError}; first error log: ${JSON.stringify(e?.['err'] ?? e).slice(0, 600)}`);
      }
      return { opsPerSec: r.ok / r.seconds, cpuMicrosPerVoucher: (cpu.user + cpu.system) / r.ok };
    } finally {
      client.close();
    }
  } finally {
    await h.stop();
  }
}

async function makePledgeFor(h: Awaited<ReturnType<typeof startMasa>>, pki: TestPki) {
  const pledge = await makePledge(pki);
  const reg = await h.admin('PUT', `/admin/devices/${pledge.serial}`,
    { certificate: Buffer.from(pledge.idevid.cert.raw).toString('base64'), productLine: 'bench', policy: 'open' });
  if (reg.status !== 201) throw new Error(`device import failed: ${reg.text}`);
  return pledge;
}

const FRESH_N = Number(process.env['MASA_BENCH_FRESH_N'] ?? 1000);

const note = (m: Measured, extra: string, n = N) => `${Math.round(m.cpuMicrosPerVoucher)} µs MASA CPU/voucher; ${n} vouchers, ${CONCURRENCY} concurrent, keep-alive mTLS${extra}`;

const CLUSTER_N = Number(process.env['MASA_BENCH_CLUSTER_N'] ?? 6000);
const WORKERS = 2;
/**
 * In-flight requests for the multi-worker rows: a MASA serves many registrars at once. With more
 * requests per event-loop turn, Redis commands (auto-pipelined) and socket work batch better:
 * on the 2-core machine 128 gave ~15 % more vouchers/s than 32 (docs/performance.md, round 4).
 */
const CLUSTER_CONCURRENCY = 128;

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const pki = await makePki();
  const out: Array<{ name: string; opsPerSec: number; note?: string }> = [];
  const clusterRedis = await startRedis();
  try {
    const rows: Array<[VoucherFormat, number]> = [['jws', CLUSTER_CONCURRENCY], ['cose', CLUSTER_CONCURRENCY], ['cms', CLUSTER_CONCURRENCY], ['jws', CONCURRENCY]];
    for (const [format, concurrency] of rows) {
      const m = await measureCluster(pki, { format, workers: WORKERS, redisUrl: clusterRedis.url, n: CLUSTER_N, devices: DEVICES, concurrency });
      out.push({ name: `masa voucher ${format}, ${WORKERS} workers, ${concurrency} concurrent (redis)`, opsPerSec: m.opsPerSec,
        note: `${Math.round(m.cpuMicrosPerVoucher)} µs MASA CPU/voucher (all processes), Redis ${Math.round(m.redisMicrosPerVoucher)} µs, `
          + `client ${Math.round(m.clientMicrosPerVoucher)} µs; p50 ${m.p50Ms.toFixed(1)} ms, p99 ${m.p99Ms.toFixed(1)} ms; ${CLUSTER_N} vouchers, keep-alive mTLS, ${DEVICES} devices, log level info; `
          + `measured after ${CLUSTER_WARMUP_REQUESTS} warm-up requests, during which a fresh MASA went ${m.warmupRates.map(Math.round).join(' → ')}/s per 2,000` });
    }
  } finally {
    await clusterRedis.stop();
  }
  for (const format of ['jws', 'cose', 'cms'] as const) {
    const m = await measure(pki, new MemoryMasaStore(), format);
    out.push({ name: `masa voucher ${format} (memory store)`, opsPerSec: m.opsPerSec, note: note(m, `, ${DEVICES} devices`) });
  }
  const fresh = await measure(pki, new MemoryMasaStore(), 'jws', FRESH_N, FRESH_N);
  out.push({ name: 'masa voucher jws, new device each (memory store)', opsPerSec: fresh.opsPerSec,
    note: note(fresh, ', first request of each device (certificate parsing not amortised)', FRESH_N) });
  const redis = await startRedis();
  const client = new Redis(redis.url);
  try {
    const m = await measure(pki, new RedisMasaStore(client), 'jws');
    out.push({ name: 'masa voucher jws (redis store)', opsPerSec: m.opsPerSec, note: note(m, `, ${DEVICES} devices, ${redis.kind} redis, read pipeline + Lua commit`) });
  } finally {
    await client.quit();
    await redis.stop();
  }
  return out;
}
