/**
 * MASA voucher issuance per second over keep-alive HTTPS with client certificates, per format
 * (memory store), plus JWS on a real Redis. Requests (PVR + RVR, fresh nonce each) are signed
 * before the clock starts, and sent by a separate client process (masa-client.ts), so the number
 * measures the MASA rather than a client sharing its event loop. The note gives the MASA
 * process's CPU time per voucher (process.cpuUsage), which is steadier than ops/s on a shared machine.
 */
import { Redis } from 'ioredis';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '../shared/src/media.ts';
import { certificatesToPem } from '../shared/src/pki/keys.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { MemoryMasaStore } from '../masa/src/store/memory.ts';
import { RedisMasaStore } from '../masa/src/store/redis.ts';
import type { MasaStore } from '../masa/src/store/types.ts';
import { startMasa } from '../masa/test/helpers/harness.ts';
import { buildPvr, buildRvr, makePki, makePledge, type TestPki } from '../masa/test/helpers/pki.ts';
import { startLoadClient } from './masa-client.ts';

const N = Number(process.env['MASA_BENCH_N'] ?? 3000);
const CONCURRENCY = 32;
const DEVICES = 100;

interface Measured { opsPerSec: number; cpuMicrosPerVoucher: number }

async function measure(pki: TestPki, store: MasaStore, format: VoucherFormat): Promise<Measured> {
  const h = await startMasa(pki, store);
  try {
    // A fleet of devices, several requests each (fresh nonce every time), interleaved.
    const pledges = [];
    for (let i = 0; i < DEVICES; i++) {
      const pledge = await makePledge(pki);
      const reg = await h.admin('PUT', `/admin/devices/${pledge.serial}`,
        { certificate: Buffer.from(pledge.idevid.cert.raw).toString('base64'), productLine: 'bench', policy: 'open' });
      if (reg.status !== 201) throw new Error(`device import failed: ${reg.text}`);
      pledges.push(pledge);
    }
    const warm = CONCURRENCY * 2; // TLS handshakes for the pool, JIT
    const bodies: string[] = [];
    for (let i = 0; i < N + warm; i++) {
      const pledge = pledges[i % DEVICES]!;
      const rvr = await buildRvr(format, pledge, pki.domainA, await buildPvr(format, pledge, pki.domainA.registrar));
      bodies.push(Buffer.from(rvr).toString('base64'));
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
        throw new Error(`${r.failed} of ${N} ${format} requests failed: ${r.firstError}; first error log: ${JSON.stringify(e?.['err'] ?? e).slice(0, 600)}`);
      }
      return { opsPerSec: r.ok / r.seconds, cpuMicrosPerVoucher: (cpu.user + cpu.system) / r.ok };
    } finally {
      client.close();
    }
  } finally {
    await h.stop();
  }
}

const note = (m: Measured, extra: string) => `${Math.round(m.cpuMicrosPerVoucher)} µs MASA CPU/voucher; ${N} vouchers, ${CONCURRENCY} concurrent, keep-alive mTLS${extra}`;

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const pki = await makePki();
  const out: Array<{ name: string; opsPerSec: number; note?: string }> = [];
  for (const format of ['jws', 'cose', 'cms'] as const) {
    const m = await measure(pki, new MemoryMasaStore(), format);
    out.push({ name: `masa voucher ${format} (memory store)`, opsPerSec: m.opsPerSec, note: note(m, '') });
  }
  const redis = await startRedis();
  const client = new Redis(redis.url);
  try {
    const m = await measure(pki, new RedisMasaStore(client), 'jws');
    out.push({ name: 'masa voucher jws (redis store)', opsPerSec: m.opsPerSec, note: note(m, `, ${redis.kind} redis, read pipeline + Lua commit`) });
  } finally {
    await client.quit();
    await redis.stop();
  }
  return out;
}
