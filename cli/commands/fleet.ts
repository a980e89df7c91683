/**
 * `brski fleet`: N pledges against a running registrar with bounded concurrency, a live progress
 * bar, and a summary table (or --json). Pledges come from a PKI directory (`brski pki init`) or
 * are manufactured on the fly through the MASA factory endpoint (--factory). `--transport coaps`
 * runs constrained pledges (cBRSKI: DTLS + CoAP, COSE vouchers) against `coaps://host:port`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { constrainedIdentityFrom, parseCoapsUrl, runConstrainedFleet } from '@brski/pledge-sim/coaps/fleet';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { VOUCHER_FORMATS } from '@brski/shared/media';
import { FactoryStation } from '@brski/pledge-sim/factory/station';
import { runFleet, type FleetFormat } from '@brski/pledge-sim/fleet/fleet';
import { createProgress } from '@brski/pledge-sim/fleet/progress';
import { formatSummary, reportJson } from '@brski/pledge-sim/fleet/report';
import type { FleetReport } from '@brski/pledge-sim/fleet/fleet';
import { factorySource, manifestSource, manufacturerTrust, readManifest, type PledgeSource } from '@brski/pledge-sim/fleet/sources';

interface FleetCliOptions {
  count: string; concurrency: string; format: string; registrar: string[]; pki?: string; trust?: string[];
  factory?: string; stationCert?: string; stationKey?: string; masaCa?: string; idevidCa?: string; serialPrefix: string;
  retryCap: string; maxWait: string; offset: string; transportRetries: string; json?: boolean; outcomes?: string;
  transport: string; ciphers?: string;
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
    .requiredOption('--registrar <url>', 'registrar origin (repeat for fall-backs); coaps://host[:port] with --transport coaps', collect)
    .option('--transport <t>', 'https (BRSKI) or coaps (cBRSKI: DTLS 1.2 + CoAP, COSE vouchers; pledges from --pki)', 'https')
    .option('--ciphers <list>', 'coaps: OpenSSL DTLS cipher list the pledges offer (e.g. ECDHE-ECDSA-AES128-CCM8)')
    .option('--count <n>', 'pledges to run', '100')
    .option('--concurrency <n>', 'pledges in flight at once', '32')
    .option('--format <fmt>', `${VOUCHER_FORMATS.join('|')}|mixed`, 'jws')
    .option('--pki <dir>', 'PKI directory from `brski pki init` (pledges, manufacturer trust, station credential)')
    .option('--offset <n>', 'first pledge of the PKI directory to use', '0')
    .option('--trust <pem>', 'voucher trust anchor(s): the MASA signing certificate, or a CA used only for it (default: from --pki)', collect)
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
    .action(async (o: FleetCliOptions, cmd: Command) => {
      const count = positiveInt(o.count, '--count');
      const concurrency = Math.max(1, positiveInt(o.concurrency, '--concurrency'));
      const offset = positiveInt(o.offset, '--offset');
      if (o.transport === 'coaps') {
        await constrainedFleet(o, cmd, { count, concurrency, offset });
        return;
      }
      if (o.transport !== 'https') throw new Error('--transport must be https or coaps');
      if (![...VOUCHER_FORMATS, 'mixed'].includes(o.format)) throw new Error(`--format must be ${VOUCHER_FORMATS.join(', ')} or mixed`);
      const manifest = o.pki ? readManifest(o.pki) : undefined;
      const trust = o.trust ? o.trust.flatMap(pem) : manifest ? manufacturerTrust(manifest) : undefined;
      if (!trust?.length) throw new Error('give --trust or --pki (voucher trust anchor: the MASA signing certificate)');
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
        printReport(o, report);
      } finally {
        progress?.stop();
        station?.close();
      }
    });
}

/** --transport coaps: constrained pledges from a PKI directory against one coaps:// registrar. */
async function constrainedFleet(o: FleetCliOptions, cmd: Command, n: { count: number; concurrency: number; offset: number }): Promise<void> {
  if (cmd.getOptionValueSource('format') !== 'default' && o.format !== 'cose') throw new Error('--transport coaps carries COSE vouchers only (--format cose)');
  if (o.factory) throw new Error('--transport coaps takes pledges from --pki: the DTLS engine needs the IDevID key as a file, which factory-made secure elements never export');
  if (!o.pki) throw new Error('--transport coaps needs --pki DIR');
  if (o.registrar.length !== 1) throw new Error('--transport coaps takes exactly one --registrar coaps://host:port');
  const { host, port } = parseCoapsUrl(o.registrar[0]!);
  const manifest = readManifest(o.pki);
  const trust = o.trust ? o.trust.flatMap(pem) : manufacturerTrust(manifest);
  if (n.offset + n.count > manifest.pledges.length) throw new Error(`the PKI directory has ${manifest.pledges.length} pledges; ${n.offset + n.count} needed`);
  const progress = createProgress(n.count);
  try {
    const report = await runConstrainedFleet({
      count: n.count, concurrency: n.concurrency, host, port, trust, maxWaitSeconds: Number(o.maxWait),
      ...(o.ciphers ? { ciphers: o.ciphers } : {}),
      identity: (i) => constrainedIdentityFrom(manifest, n.offset + i),
      onResult: (_r, p) => progress?.update(p.done, p.ok, p.failed),
    });
    progress?.stop();
    printReport(o, report);
  } finally {
    progress?.stop();
  }
}

function printReport(o: FleetCliOptions, report: FleetReport): void {
  if (o.outcomes) writeFileSync(o.outcomes, `${JSON.stringify(reportJson(report, { outcomes: true }), null, 2)}\n`);
  process.stdout.write(o.json ? `${JSON.stringify(reportJson(report), null, 2)}\n` : `\n${formatSummary(report)}\n`);
  process.exitCode = report.failed === 0 ? 0 : 1;
}
