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
import { factorySource, manifestSource, manufacturerTrust, type PledgeSource } from '@brski/pledge-sim/fleet/sources';
import { parse } from 'yaml';
import { buildConfig } from '@brski/shared/config/load';
import { buildMasaConfig } from '../masa/src/config.ts';
import { registrarConfigSchema } from '../registrar/src/config.ts';
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

  const masaRaw = parse(readFileSync(manifest.masaConfig, 'utf8')) as Record<string, any>;
  masaRaw['mode'] = 'development'; // the station credential comes from the demo PKI
  masaRaw['listen'] = { host: '127.0.0.1', port: 0 };
  masaRaw['masaUrl'] = manifest.masaUrl;
  masaRaw['idevid'] = { ...masaRaw['idevid'], caCertFile: manifest.idevidCa.cert, caKeyFile: manifest.idevidCa.key }; // enables the factory
  masaRaw['factory'] = { ...masaRaw['factory'], rateLimit: { max: 1_000_000, windowSeconds: 60 } };
  masaRaw['admin'] = { ...masaRaw['admin'], port: 0 };
  masaRaw['store'] = o.redisUrl ? { type: 'redis', url: o.redisUrl, prefix: `demo:${runId}:masa:` } : { type: 'memory' };
  masaRaw['log'] = { level };
  const masa = createMasa(buildMasaConfig(masaRaw, dir));
  await masa.start();

  const regRaw = parse(readFileSync(manifest.registrarConfig, 'utf8')) as Record<string, any>;
  regRaw['domain'] = `demo-${runId}`;
  regRaw['listen'] = { host: '127.0.0.1', port: 0 };
  // The IDevIDs name the MASA's default port; the demo MASA runs on a free one.
  regRaw['manufacturers'] = (regRaw['manufacturers'] as Array<Record<string, unknown>>).map((m) => ({ ...m, masaUrl: `localhost:${masa.port}` }));
  regRaw['admin'] = { ...regRaw['admin'], port: 0 };
  regRaw['store'] = o.redisUrl ? { type: 'redis', url: o.redisUrl, prefix: `demo:${runId}:registrar:` } : { type: 'memory' };
  regRaw['log'] = { level };
  const registrar = createRegistrar(buildConfig(regRaw, registrarConfigSchema, { baseDir: dir }));
  await registrar.start();
  say(`demo: MASA ${masa.url}, registrar ${registrar.url}, store ${o.redisUrl ? `redis ${o.redisUrl}` : 'memory'}`);

  const pem = (p: string) => parseCertificatesPem(readFileSync(p, 'utf8'));
  const trust = manufacturerTrust(manifest); // voucher anchor: the MASA signer only (digest §8.6)
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
