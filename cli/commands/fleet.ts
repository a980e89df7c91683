/**
 * `brski fleet`: N pledges against a running registrar with bounded concurrency, a live progress
 * bar, and a summary table (or --json). Pledges come from a PKI directory (`brski pki init`) or
 * are manufactured on the fly through the MASA factory endpoint (--factory).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { VOUCHER_FORMATS } from '@brski/shared/media';
import { FactoryStation } from '@brski/pledge-sim/factory/station';
import { runFleet, type FleetFormat } from '@brski/pledge-sim/fleet/fleet';
import { createProgress } from '@brski/pledge-sim/fleet/progress';
import { formatSummary, reportJson } from '@brski/pledge-sim/fleet/report';
import { factorySource, manifestSource, manufacturerTrust, readManifest, type PledgeSource } from '@brski/pledge-sim/fleet/sources';

interface FleetCliOptions {
  count: string; concurrency: string; format: string; registrar: string[]; pki?: string; trust?: string[];
  factory?: string; stationCert?: string; stationKey?: string; masaCa?: string; idevidCa?: string; serialPrefix: string;
  retryCap: string; maxWait: string; offset: string; transportRetries: string; json?: boolean; outcomes?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const pem = (p: string) => parseCertificatesPem(readFileSync(p, 'utf8'));

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  return n;
}

export function register(program: Command): void {
  program.command('fleet')
    .description('onboard many pledges against a running registrar: progress bar, latency per phase, failures by reason')
    .requiredOption('--registrar <url>', 'registrar origin (repeat for fall-backs)', collect)
    .option('--count <n>', 'pledges to run', '100')
    .option('--concurrency <n>', 'pledges in flight at once', '32')
    .option('--format <fmt>', `${VOUCHER_FORMATS.join('|')}|mixed`, 'jws')
    .option('--pki <dir>', 'PKI directory from `brski pki init` (pledges, manufacturer trust, station credential)')
    .option('--offset <n>', 'first pledge of the PKI directory to use', '0')
    .option('--trust <pem>', 'manufacturer trust anchor(s) + MASA signing cert (default: from --pki)', collect)
    .option('--factory <url>', 'manufacture new pledges through this MASA factory endpoint (e.g. https://masa:9443/factory/idevid)')
    .option('--station-cert <pem>', 'factory station certificate (default: from --pki)')
    .option('--station-key <pem>', 'factory station key (default: from --pki)')
    .option('--masa-ca <pem>', 'anchor for the MASA TLS certificate (default: manufacturer CA from --pki)')
    .option('--idevid-ca <pem>', 'anchor the issued IDevIDs must chain to (default: IDevID CA from --pki)')
    .option('--serial-prefix <p>', 'serial prefix for factory-made pledges', 'FLEET')
    .option('--retry-cap <seconds>', 'cap on any Retry-After wait', '60')
    .option('--max-wait <seconds>', 'give up a request after retrying this long', '600')
    .option('--transport-retries <n>', 'reconnects after a refused/reset connection (each voucher attempt gets a new nonce)', '5')
    .option('--json', 'print the report as JSON')
    .option('--outcomes <file>', 'write every pledge outcome (serial, reason, timings) as JSON here')
    .action(async (o: FleetCliOptions) => {
      const count = positiveInt(o.count, '--count');
      const concurrency = Math.max(1, positiveInt(o.concurrency, '--concurrency'));
      const offset = positiveInt(o.offset, '--offset');
      if (![...VOUCHER_FORMATS, 'mixed'].includes(o.format)) throw new Error(`--format must be ${VOUCHER_FORMATS.join(', ')} or mixed`);
      const manifest = o.pki ? readManifest(o.pki) : undefined;
      const trust = o.trust ? o.trust.flatMap(pem) : manifest ? manufacturerTrust(manifest) : undefined;
      if (!trust?.length) throw new Error('give --trust or --pki (manufacturer trust anchor and MASA signing certificate)');
      let source: PledgeSource;
      let station: FactoryStation | undefined;
      if (o.factory) {
        const certPath = o.stationCert ?? manifest?.station?.cert;
        const keyPath = o.stationKey ?? manifest?.station?.key;
        const masaCa = o.masaCa ?? manifest?.manufacturerCa.cert;
        const idevidCa = o.idevidCa ?? manifest?.idevidCa.cert;
        if (!certPath || !keyPath || !masaCa || !idevidCa) throw new Error('--factory needs --station-cert, --station-key, --masa-ca and --idevid-ca (or --pki)');
        station = new FactoryStation({
          endpoint: o.factory, key: readFileSync(keyPath, 'utf8'), certificates: pem(certPath), masaTlsAnchors: pem(masaCa), idevidAnchors: pem(idevidCa),
        });
        source = factorySource(station, trust, o.serialPrefix);
      } else {
        if (!manifest) throw new Error('give --pki DIR (pledges from a PKI directory) or --factory URL (manufacture new ones)');
        source = manifestSource(manifest);
        if (offset + count > source.available) throw new Error(`the PKI directory has ${source.available} pledges; ${offset + count} needed`);
      }
      // Progress goes to stderr, so it does not disturb --json on stdout.
      const progress = createProgress(count);
      try {
        const report = await runFleet({
          count, concurrency, format: o.format as FleetFormat, registrars: o.registrar, trust,
          secureElement: (i) => source.secureElement(offset + i),
          retry: { capSeconds: Number(o.retryCap), maxTotalSeconds: Number(o.maxWait), transportRetries: positiveInt(o.transportRetries, '--transport-retries') },
          onResult: (_r, p) => progress?.update(p.done, p.ok, p.failed),
        });
        progress?.stop();
        if (o.outcomes) writeFileSync(o.outcomes, `${JSON.stringify(reportJson(report, { outcomes: true }), null, 2)}\n`);
        process.stdout.write(o.json ? `${JSON.stringify(reportJson(report), null, 2)}\n` : `\n${formatSummary(report)}\n`);
        process.exitCode = report.failed === 0 ? 0 : 1;
      } finally {
        progress?.stop();
        station?.close();
      }
    });
}
