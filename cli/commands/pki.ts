/** `brski pki …`: demo PKI generation and certificate inspection. */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseCertificatesPem } from '../../shared/src/crypto/software-signer.ts';
import {
  certificateInfo, idevidIssuerOf, masaBaseUrl, masaUrlOf, serialNumberOf, spkiSha256, subjectKeyIdOf,
} from '../../shared/src/pki/index.ts';
import { initDemoPki, type PkiManifest } from '../lib/pki-init.ts';

const intArg = (name: string, min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
  return n;
};

function summary(m: PkiManifest): string {
  return [
    `PKI written to ${m.dir} (${m.curve}, MASA URL ${m.masaUrl})`,
    `  manufacturer CA  ${m.manufacturerCa.cert}`,
    `  IDevID CA        ${m.idevidCa.cert}`,
    `  MASA signer/TLS  ${m.masaSigner.cert}, ${m.masaTls.cert}`,
    `  domain CA        ${m.domainCa.cert}`,
    `  registrar        ${m.registrar.cert}`,
    `  station          ${m.station.cert}`,
    `  pledges          ${m.pledges.length} in ${m.dir}/pledges`,
    `  configs          ${m.masaConfig}, ${m.registrarConfig}`,
  ].join('\n');
}

function describeCertificate(cert: X509Certificate): Record<string, unknown> {
  const info = certificateInfo(cert);
  const masa = masaUrlOf(cert);
  let base: string | undefined;
  try { base = masa === undefined ? undefined : masaBaseUrl(masa); } catch (e) { base = `invalid: ${(e as Error).message}`; }
  const ski = subjectKeyIdOf(cert);
  return {
    subject: cert.subject.split('\n'),
    issuer: cert.issuer.split('\n'),
    serial: info.serialHex,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    ca: info.isCa,
    ekus: info.ekus,
    serialNumber: serialNumberOf(cert),
    masaUrl: masa,
    masaBaseUrl: base,
    idevidIssuer: Buffer.from(idevidIssuerOf(cert)).toString('hex'),
    subjectKeyId: ski ? Buffer.from(ski).toString('hex') : undefined,
    spkiSha256: Buffer.from(spkiSha256(cert)).toString('hex'),
  };
}

export function register(program: Command): void {
  const pki = program.command('pki').description('PKI tools: demo PKI generation, certificate inspection');

  pki.command('init')
    .description('create a complete demo PKI (manufacturer, MASA, domain, registrar, station, pledges) and service configs')
    .requiredOption('--out <dir>', 'output directory (must be empty unless --force)')
    .option('--devices <n>', 'number of pledge IDevIDs', intArg('--devices', 0, 1_000_000), 10)
    .addOption(new Option('--curve <curve>', 'EC curve for generated keys').choices(['P-256', 'P-384']).default('P-256'))
    .option('--masa-url <authority>', 'MASA URL extension value in IDevIDs (default localhost:<masa-port>)')
    .option('--registrar-port <port>', 'registrar HTTPS port', intArg('--registrar-port', 1, 65534), 8443)
    .option('--masa-port <port>', 'MASA HTTPS port', intArg('--masa-port', 1, 65534), 9443)
    .option('--serial-prefix <prefix>', 'pledge serial prefix', 'PSIM')
    .option('--force', 'write into a non-empty directory, overwriting files')
    .option('--json', 'print the manifest as JSON')
    .action(async (o: { out: string; devices: number; curve: 'P-256' | 'P-384'; masaUrl?: string; registrarPort: number; masaPort: number;
      serialPrefix: string; force?: boolean; json?: boolean }) => {
      if (o.masaUrl !== undefined) masaBaseUrl(o.masaUrl); // fail early on values a registrar would refuse
      const manifest = await initDemoPki({
        out: o.out, devices: o.devices, curve: o.curve, masaUrl: o.masaUrl, registrarPort: o.registrarPort, masaPort: o.masaPort,
        serialPrefix: o.serialPrefix, force: o.force,
      });
      process.stdout.write(o.json ? `${JSON.stringify(manifest, null, 2)}\n` : `${summary(manifest)}\n`);
    });

  pki.command('show')
    .description('print the BRSKI-relevant identity of a certificate (serial-number, MASA URL, idevid-issuer, key ids)')
    .argument('<cert>', 'PEM or DER certificate file (first certificate of a PEM bundle)')
    .action((file: string) => {
      const bytes = readFileSync(file);
      const text = bytes.toString('latin1');
      const cert = text.includes('-----BEGIN CERTIFICATE-----') ? parseCertificatesPem(text)[0]! : new X509Certificate(bytes);
      process.stdout.write(`${JSON.stringify(describeCertificate(cert), null, 2)}\n`);
    });
}
