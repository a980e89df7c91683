/**
 * Registrar throughput over real HTTPS (keep-alive, client certificates), memory store:
 *  - voucher path: PVR verify → admission → RVR sign → in-process test MASA → voucher checks → relay
 *    (each request a fresh PVR, so nothing is served from the retry cache);
 *  - simpleenroll: CSR check + LDevID issuance + certs-only answer.
 */
import https from 'node:https';
import { createCsr, generateKeyPair } from '../shared/src/pki/index.ts';
import { SoftwareSigner } from '../shared/src/crypto/software-signer.ts';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '../shared/src/media.ts';
import { createRegistrar } from '../registrar/src/server.ts';
import { makeFixture, type TestPledge } from '../registrar/test/helpers/fixture.ts';
import { startTestMasa } from '../registrar/test/helpers/test-masa.ts';
import { makePvr } from '../registrar/test/helpers/client.ts';

const CONCURRENCY = 16;

function post(agent: https.Agent, url: string, type: string, body: Uint8Array | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', agent, headers: { 'content-type': type } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : Buffer.from(body));
  });
}

async function measure(total: number, work: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < total; i = next++) await work(i);
  }));
  return total / ((performance.now() - start) / 1000);
}

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const fx = await makeFixture({ devices: CONCURRENCY, overrides: (c) => { c.masa.jobTtlSeconds = 60; } });
  const masa = await startTestMasa(fx);
  const reg = createRegistrar(fx.config);
  await reg.start();
  const agents = new Map<TestPledge, https.Agent>(fx.pledges.map((p) => [p, new https.Agent({
    keepAlive: true, maxSockets: 1, key: p.keyPem, cert: p.certPem, rejectUnauthorized: false,
  })]));
  const results: Array<{ name: string; opsPerSec: number; note?: string }> = [];
  try {
    for (const format of ['cms', 'jws', 'cose'] as VoucherFormat[]) {
      const n = 300;
      // PVRs are prepared up front: the pledge's signing cost is not the registrar's.
      const pvrs = await Promise.all(Array.from({ length: n }, async (_, i) => {
        const p = fx.pledges[i % fx.pledges.length]!;
        return { p, bytes: (await makePvr(format, p.signer, p.serial, { registrarCert: fx.registrarCert })).bytes };
      }));
      const ops = await measure(n, async (i) => {
        const { p, bytes } = pvrs[i]!;
        const status = await post(agents.get(p)!, `${reg.url}/.well-known/brski/requestvoucher`, VOUCHER_MEDIA_TYPE[format], bytes);
        if (status !== 200) throw new Error(`voucher request answered ${status}`);
      });
      results.push({ name: `registrar voucher path (${format})`, opsPerSec: ops, note: `${CONCURRENCY} pledges, keep-alive, test MASA in-process` });
    }
    const n = 400;
    const csrs = await Promise.all(Array.from({ length: n }, async () =>
      Buffer.from(await createCsr([['CN', 'bench']], new SoftwareSigner(generateKeyPair('P-256').privateKey))).toString('base64')));
    const ops = await measure(n, async (i) => {
      const p = fx.pledges[i % fx.pledges.length]!;
      const status = await post(agents.get(p)!, `${reg.url}/.well-known/est/simpleenroll`, 'application/pkcs10', csrs[i]!);
      if (status !== 200) throw new Error(`simpleenroll answered ${status}`);
    });
    results.push({ name: 'registrar simpleenroll', opsPerSec: ops, note: `${CONCURRENCY} pledges, keep-alive, memory store` });
  } finally {
    for (const a of agents.values()) a.destroy();
    await reg.stop();
    await masa.stop();
  }
  return results;
}
