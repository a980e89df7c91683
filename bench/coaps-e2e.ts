/**
 * `npm run bench:e2e`, CoAPS row: full cBRSKI onboardings (DTLS 1.2 + CoAP, COSE voucher through
 * the registrar to the MASA, EST-coaps enrollment, enrollstatus over an LDevID session) with
 * MASA, registrar (`coaps.enabled: true` in its YAML) and a `brski fleet --transport coaps` in
 * separate processes on a Redis store, like bench/e2e.ts does for HTTPS. Prints onboardings/s and
 * p50/p99 per phase — what was measured on this machine, nothing else.
 *
 * Options: --count 300 --concurrency 32 --warmup 20 --redis URL --json. `npm run bench:e2e -- …`
 * appends its arguments to this (last) command only; bench/e2e.ts's own options (--formats,
 * --procs, --cpu-prof) are accepted here and ignored, so such a command line still runs.
 */
import { freeUdpPort } from '../test/helpers/ports.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { DtlsClient } from '../pledge-sim/src/coaps/dtls-client.ts';
import { constrainedIdentityFrom } from '../pledge-sim/src/coaps/fleet.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { makeTempDir } from '../test/helpers/tmp.ts';
import { ServiceProcess, createE2ePki, freePort, masaYaml, registrarYaml, runBrski } from '../test/e2e/helpers/stack.ts';
import { ensureDtlsAddon } from '../registrar/test/coap/harness.ts';

const { values } = parseArgs({
  strict: true, options: {
    count: { type: 'string', default: '300' }, concurrency: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '20' }, redis: { type: 'string' }, json: { type: 'boolean', default: false },
    formats: { type: 'string' }, procs: { type: 'string' }, 'cpu-prof': { type: 'string' }, // bench/e2e.ts's; ignored
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);
const log = (s: string): void => { if (!values.json) process.stderr.write(`${s}\n`); };

ensureDtlsAddon();
const tmp = makeTempDir('brski-bench-coaps-');
const redis = values.redis ? undefined : await startRedis();
const redisUrl = values.redis ?? redis!.url;
log(`bench:e2e coaps: PKI with ${warmup + count} pledges in ${tmp.path}`);
const pki = await createE2ePki(tmp.path, warmup + count);
const masaPort = await freePort();
const coapsPort = await freeUdpPort();
const run = Date.now().toString(36);
const masa = new ServiceProcess('masa', masaYaml(pki, masaPort, redisUrl, `bench:${run}:masa:`));
const regFile = registrarYaml(pki, { port: await freePort(), masaPort, redisUrl, prefix: `bench:${run}:reg:`, domain: 'bench' });
const regDoc = parse(readFileSync(regFile, 'utf8')) as Record<string, unknown>;
regDoc['coaps'] = { enabled: true, host: '127.0.0.1', port: coapsPort };
writeFileSync(regFile, stringify(regDoc), { mode: 0o600 });
const registrar = new ServiceProcess('registrar', regFile);

/** The UDP listener opens after the HTTPS port the harness waits for. */
async function waitForCoaps(): Promise<void> {
  const id = constrainedIdentityFrom(pki.manifest, 0);
  for (let i = 0; ; i++) {
    try {
      (await DtlsClient.connect({ host: '127.0.0.1', port: coapsPort, certChain: id.idevidChainPem, key: id.idevidKeyPem, handshakeTimeoutMs: 1000 })).close();
      return;
    } catch (e) {
      if (i > 100) throw new Error(`CoAPS listener not up: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

interface Report { onboarded: number; failed: number; failuresByReason: Record<string, number>;
  latency: Record<string, { p50: number; p99: number }> }

async function fleet(offset: number, n: number): Promise<{ report: Report; seconds: number }> {
  const t0 = performance.now();
  const r = await runBrski(['fleet', '--transport', 'coaps', '--registrar', `coaps://127.0.0.1:${coapsPort}`, '--pki', pki.dir,
    '--offset', String(offset), '--count', String(n), '--concurrency', String(concurrency), '--max-wait', '120', '--json'], 900_000);
  if (!r.json) throw new Error(`fleet process failed:\n${r.stdout}\n${r.stderr}`);
  // Wall clock of the fleet process, start-up included (conservative, as bench/e2e.ts).
  return { report: r.json as Report, seconds: (performance.now() - t0) / 1000 };
}

let row: { count: number; onboarded: number; failed: number; seconds: number; throughput: number; report: Report } | undefined;
try {
  await masa.start();
  await registrar.start();
  await waitForCoaps();
  log(`MASA :${masaPort}, registrar CoAPS udp/${coapsPort}, Redis ${redisUrl}; ${count} pledges, concurrency ${concurrency}`);
  if (warmup > 0) await fleet(0, warmup);
  const { report, seconds } = await fleet(warmup, count);
  row = { count, onboarded: report.onboarded, failed: report.failed, seconds, throughput: report.onboarded / seconds, report };
  log(`coaps: ${row.onboarded}/${count} onboarded in ${seconds.toFixed(2)} s → ${row.throughput.toFixed(1)} onboardings/s`);
} finally {
  await registrar.stop();
  await masa.stop();
  await redis?.stop();
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ transport: 'coaps', count, concurrency, row }, null, 2)}\n`);
} else if (row) {
  const f = (v: number | undefined): string => (v ?? NaN).toFixed(1).padStart(8);
  const L = row.report.latency;
  process.stdout.write(`${[
    '', 'transport onboarded  failed   per s  |   tls p50  tls p99 | vouch p50 vouch p99 | enrol p50 enrol p99 | total p50 total p99 (ms)',
    `coaps     ${String(row.onboarded).padStart(9)} ${String(row.failed).padStart(7)} ${f(row.throughput)}  | ${f(L['tls']?.p50)} ${f(L['tls']?.p99)} | `
      + `${f(L['voucher']?.p50)} ${f(L['voucher']?.p99)} | ${f(L['enroll']?.p50)} ${f(L['enroll']?.p99)} | ${f(L['total']?.p50)} ${f(L['total']?.p99)}`,
    ...(row.failed ? [`          failures: ${Object.entries(row.report.failuresByReason).map(([k, v]) => `${k} ${v}`).join(', ')}`] : []),
    '(enroll includes the second DTLS handshake with the LDevID for enrollstatus)',
  ].join('\n')}\n`);
}
tmp.cleanup();
process.exit(row && row.failed === 0 ? 0 : 1);
