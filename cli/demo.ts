/**
 * `npm run demo` (and `brski demo`): with nothing running and nothing configured — a fresh PKI in
 * a temporary directory, MASA and registrar in THIS process on free loopback ports (in-memory
 * stores, or Redis with --redis), pledges manufactured through the MASA factory endpoint, then
 * onboarded across the three voucher formats; prints the summary and where the certificates are.
 *
 * This is the one place allowed to compose MASA + registrar + pledges in one process; the e2e
 * tests and the benchmark run them as separate processes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { VOUCHER_FORMATS } from '@brski/shared/media';
import { FactoryStation } from '@brski/pledge-sim/factory/station';
import { runFleet, type FleetFormat, type FleetReport } from '@brski/pledge-sim/fleet/fleet';
import { createProgress } from '@brski/pledge-sim/fleet/progress';
import { formatSummary, reportJson } from '@brski/pledge-sim/fleet/report';
import { factorySource, manifestSource, type PledgeSource } from '@brski/pledge-sim/fleet/sources';
import { buildMasaConfig } from '../masa/src/config.ts';
import { createMasa } from '../masa/src/server.ts';
import { createRegistrar } from '../registrar/src/server.ts';
import { initDemoPki } from './lib/pki-init.ts';

export interface DemoOptions {
  count: number;
  concurrency: number;
  format: FleetFormat;
  redisUrl?: string;
  /** Output directory (default: a new temporary directory). */
  dir?: string;
  /** Use the PKI directory's pre-made pledges instead of the factory. */
  noFactory?: boolean;
  json?: boolean;
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug';
}

export interface DemoResult { report: FleetReport; dir: string; ldevidDir: string }

const out = (s: string): void => { process.stdout.write(`${s}\n`); };

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const dir = resolve(o.dir ?? mkdtempSync(join(tmpdir(), 'brski-demo-')));
  const say = o.json ? (_: string): void => undefined : out;
  say(`demo: PKI in ${dir}`);
  const manifest = await initDemoPki({ out: dir, devices: o.noFactory ? o.count : 0, force: true });
  const level = o.logLevel ?? 'error';
  const runId = randomBytes(4).toString('hex'); // separates the Redis keys of successive runs
  // The MASA TLS file holds the server certificate followed by its chain.
  writeFileSync(join(dir, 'masa-tls-chain.pem'), readFileSync(manifest.masaTls.cert, 'utf8') + readFileSync(manifest.manufacturerCa.cert, 'utf8'));

  const masa = createMasa(buildMasaConfig({
    mode: 'development',
    listen: { host: '127.0.0.1', port: 0 },
    tls: { certFile: 'masa-tls-chain.pem', keyFile: 'masa-tls.key' },
    signer: { certFile: 'masa-signer.pem', keyFile: 'masa-signer.key' },
    idevidCa: { certFile: 'idevid-ca.pem', keyFile: 'idevid-ca.key' },
    masaUrl: manifest.masaUrl,
    voucher: { formats: [...VOUCHER_FORMATS], includeIdevidIssuer: true },
    // Lab ownership: demo pledges were never sold, so the first domain to ask owns them.
    ownership: { defaultPolicy: 'first-use', autoRegister: true, defaultProductLine: 'psim' },
    factory: { enabled: true, stationCaFile: 'manufacturer-ca.pem', rateLimit: { max: 1_000_000, windowSeconds: 60 } },
    store: o.redisUrl ? { type: 'redis', redis: { url: o.redisUrl, keyPrefix: `demo:${runId}:` } } : { type: 'memory' },
    log: { level },
  }, dir));
  await masa.start();
  const registrar = createRegistrar({
    domain: `demo-${runId}`,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { certFile: manifest.registrar.cert, keyFile: manifest.registrar.key, chainFiles: [manifest.domainCa.cert] },
    ca: { certFile: manifest.domainCa.cert, keyFile: manifest.domainCa.key },
    manufacturers: [{
      name: 'PSIM Manufacturing',
      idevidAnchorFiles: [manifest.idevidCa.cert],
      masaUrl: `localhost:${masa.port}`, // the IDevIDs name the default MASA port; the demo MASA runs on a free one
      masaTlsAnchorFiles: [manifest.manufacturerCa.cert],
      voucherAnchorFiles: [manifest.manufacturerCa.cert],
    }],
    admin: { host: '127.0.0.1', port: 0, token: randomBytes(24).toString('base64url') },
    store: o.redisUrl ? { type: 'redis', url: o.redisUrl, prefix: `demo:${runId}:registrar:` } : { type: 'memory' },
    log: { level },
  });
  await registrar.start();
  say(`demo: MASA ${masa.url}, registrar ${registrar.url}, store ${o.redisUrl ? `redis ${o.redisUrl}` : 'memory'}`);

  const pem = (p: string) => parseCertificatesPem(readFileSync(p, 'utf8'));
  const trust = [...pem(manifest.manufacturerCa.cert), ...pem(manifest.masaSigner.cert)];
  let station: FactoryStation | undefined;
  let source: PledgeSource;
  if (o.noFactory) {
    source = manifestSource(manifest);
  } else {
    station = new FactoryStation({
      endpoint: `${masa.url}/factory/idevid`, key: readFileSync(manifest.station.key, 'utf8'), certificates: pem(manifest.station.cert),
      masaTlsAnchors: pem(manifest.manufacturerCa.cert), idevidAnchors: pem(manifest.idevidCa.cert), productLine: 'psim', location: 'demo line 1',
    });
    source = factorySource(station, trust, 'DEMO');
  }
  say(`demo: ${o.noFactory ? 'pledges from the PKI directory' : 'manufacturing pledges through the MASA factory endpoint'}; onboarding ${o.count} (${o.format}, concurrency ${o.concurrency})`);

  const progress = o.json ? undefined : createProgress(o.count);
  let report: FleetReport;
  try {
    report = await runFleet({
      count: o.count, concurrency: o.concurrency, format: o.format, registrars: [registrar.url], trust,
      secureElement: (i) => source.secureElement(i), retry: { capSeconds: 2, maxTotalSeconds: 120 },
      onResult: (_r, p) => progress?.update(p.done, p.ok, p.failed),
    });
  } finally {
    progress?.stop();
    station?.close();
    await registrar.stop().catch(() => undefined);
    await masa.stop().catch(() => undefined);
  }

  const ldevidDir = join(dir, 'ldevids');
  mkdirSync(ldevidDir, { recursive: true });
  for (const r of report.outcomes) if (r.ok && r.ldevidPem && r.serial) writeFileSync(join(ldevidDir, `${r.serial}.pem`), r.ldevidPem);
  writeFileSync(join(dir, 'fleet-report.json'), `${JSON.stringify(reportJson(report, { outcomes: true }), null, 2)}\n`);
  if (o.json) {
    out(JSON.stringify({ ...(reportJson(report) as object), dir, ldevidDir, seconds: (performance.now() - t0) / 1000 }, null, 2));
  } else {
    out('');
    out(formatSummary(report));
    out('');
    out(`certificates: PKI and configuration in ${dir}`);
    out(`              ${report.onboarded} LDevIDs in ${ldevidDir}; per-pledge outcomes in ${join(dir, 'fleet-report.json')}`);
    out(`demo finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { report, dir, ldevidDir };
}

export function parseDemoArgs(argv: string[]): DemoOptions {
  const { values } = parseArgs({
    args: argv, strict: true, options: {
      count: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '32' },
      format: { type: 'string', default: 'mixed' }, redis: { type: 'string' }, dir: { type: 'string' },
      'no-factory': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, 'log-level': { type: 'string' },
    },
  });
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency must be a positive integer');
  if (![...VOUCHER_FORMATS, 'mixed'].includes(values.format!)) throw new Error('--format must be jws, cms, cose or mixed');
  return {
    count, concurrency, format: values.format as FleetFormat, json: values.json!, noFactory: values['no-factory']!,
    ...(values.redis ? { redisUrl: values.redis } : {}), ...(values.dir ? { dir: values.dir } : {}),
    ...(values['log-level'] ? { logLevel: values['log-level'] as DemoOptions['logLevel'] } : {}),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const { report } = await runDemo(parseDemoArgs(process.argv.slice(2)));
    process.exit(report.failed === 0 ? 0 : 1);
  } catch (e) {
    process.stderr.write(`demo failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  }
}
