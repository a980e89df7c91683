/**
 * MASA voucher issuance per second over keep-alive HTTPS with client certificates, per format
 * (memory store), plus JWS on a real Redis. Requests (PVR + RVR, fresh nonce each) are signed
 * before the clock starts, so the number measures the MASA, not the client.
 */
import { Redis } from 'ioredis';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '../shared/src/media.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { MemoryMasaStore } from '../masa/src/store/memory.ts';
import { RedisMasaStore } from '../masa/src/store/redis.ts';
import type { MasaStore } from '../masa/src/store/types.ts';
import { startMasa } from '../masa/test/helpers/harness.ts';
import { buildPvr, buildRvr, makePki, makePledge, type TestPki } from '../masa/test/helpers/pki.ts';

const N = Number(process.env['MASA_BENCH_N'] ?? 3000);
const CONCURRENCY = 32;
const DEVICES = 100;

async function measure(pki: TestPki, store: MasaStore, format: VoucherFormat): Promise<number> {
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
    const bodies: Uint8Array[] = [];
    for (let i = 0; i < N; i++) {
      const pledge = pledges[i % DEVICES]!;
      bodies.push(await buildRvr(format, pledge, pki.domainA, await buildPvr(format, pledge, pki.domainA.registrar)));
    }
    const client = h.client(pki.domainA.registrar);
    const type = VOUCHER_MEDIA_TYPE[format];
    // Warm-up: TLS handshakes for the pool and the JIT.
    await Promise.all(bodies.splice(0, CONCURRENCY * 2).map((b) => client.post('/.well-known/brski/requestvoucher', b, type)));
    let next = 0;
    let failed = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++]!;
        const r = await client.post('/.well-known/brski/requestvoucher', b, type);
        if (r.status !== 200) failed++;
      }
    }));
    const seconds = (performance.now() - start) / 1000;
    if (failed) {
      const e = h.logs.find((l) => l["level"] === "error");
      throw new Error(`${failed} of ${bodies.length} ${format} requests failed; first error: ${JSON.stringify(e?.["err"] ?? e).slice(0, 600)}`);
    }
    return bodies.length / seconds;
  } finally {
    await h.stop();
  }
}

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const pki = await makePki();
  const out: Array<{ name: string; opsPerSec: number; note?: string }> = [];
  for (const format of ['jws', 'cose', 'cms'] as const) {
    out.push({ name: `masa voucher ${format} (memory store)`, opsPerSec: await measure(pki, new MemoryMasaStore(), format),
      note: `${N} vouchers, ${CONCURRENCY} concurrent, keep-alive mTLS` });
  }
  const redis = await startRedis();
  const client = new Redis(redis.url);
  try {
    out.push({ name: 'masa voucher jws (redis store)', opsPerSec: await measure(pki, new RedisMasaStore(client), 'jws'),
      note: `${redis.kind} redis, 2 round trips per voucher` });
  } finally {
    await client.quit();
    await redis.stop();
  }
  return out;
}
