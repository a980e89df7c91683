/** `brski voucher sign|verify`: sign a JSON voucher(-request) as CMS/JWS/COSE, verify any of them. */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseCertificatesPem, SoftwareSigner } from '../../shared/src/crypto/software-signer.ts';
import { createPrivateKey } from 'node:crypto';
import type { VoucherFormat } from '../../shared/src/media.ts';
import type { MessageRole } from '../../shared/src/voucher/model.ts';
import { reasonOf, signVoucherPayload, verifyVoucherBytes } from '../lib/voucher-tool.ts';

function certsFrom(path: string) {
  const certs = parseCertificatesPem(readFileSync(path, 'utf8'));
  if (certs.length === 0) throw new InvalidArgumentError(`${path} holds no PEM certificate`);
  return certs;
}

function dateArg(v: string): Date {
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) throw new InvalidArgumentError('expected an ISO 8601 date-time');
  return d;
}

export function register(program: Command): void {
  const voucher = program.command('voucher').description('sign and verify vouchers and voucher-requests (CMS, JWS, COSE)');

  voucher.command('sign')
    .description('sign an RFC 7951 JSON voucher or voucher-request')
    .addOption(new Option('--format <format>', 'envelope').choices(['cms', 'jws', 'cose']).makeOptionMandatory())
    .requiredOption('--key <file>', 'signer private key (PEM)')
    .requiredOption('--cert <file>', 'signer certificate (PEM)')
    .option('--chain <file>', 'intermediate certificates to include (PEM bundle)')
    .requiredOption('--in <file>', 'payload JSON')
    .addOption(new Option('--role <role>', 'message rules to check (default: from the payload)').choices(['pvr', 'rvr', 'voucher']))
    .option('--out <file>', 'output file (default stdout)')
    .action(async (o: { format: VoucherFormat; key: string; cert: string; chain?: string; in: string; role?: MessageRole; out?: string }) => {
      const certs = [...certsFrom(o.cert).slice(0, 1), ...(o.chain ? certsFrom(o.chain) : [])];
      const signer = new SoftwareSigner(createPrivateKey(readFileSync(o.key)), certs);
      const signed = await signVoucherPayload(new Uint8Array(readFileSync(o.in)), { format: o.format, signer, ...(o.role ? { role: o.role } : {}) });
      if (o.out) writeFileSync(o.out, signed);
      else process.stdout.write(signed);
    });

  voucher.command('verify')
    .description('detect the format, verify signature and chain, validate, print the payload; exit 0 only when valid')
    .requiredOption('--in <file>', 'signed artifact (DER/base64 CMS, JWS JSON, COSE)')
    .requiredOption('--trust <file>', 'trust anchor(s) (PEM bundle)')
    .option('--at <iso>', 'validation time (default now)', dateArg)
    .option('--signer-cert <file>', 'signer certificate when the artifact carries none (COSE PVR)')
    .option('--extra <file>', 'additional intermediate certificates (PEM bundle)')
    .option('--strict', 'reject unknown payload members')
    .option('--json', 'print a JSON report instead of the payload')
    .action(async (o: { in: string; trust: string; at?: Date; signerCert?: string; extra?: string; strict?: boolean; json?: boolean }) => {
      try {
        const report = await verifyVoucherBytes(new Uint8Array(readFileSync(o.in)), {
          anchors: certsFrom(o.trust),
          ...(o.at ? { at: o.at } : {}),
          ...(o.signerCert ? { signerCertificate: certsFrom(o.signerCert)[0]! } : {}),
          ...(o.extra ? { extraCertificates: certsFrom(o.extra) } : {}),
          strict: o.strict ?? false,
        });
        process.stdout.write(`${JSON.stringify(o.json ? report : report.payload, null, 2)}\n`);
      } catch (e) {
        process.stderr.write(`invalid: ${reasonOf(e).split('\n')[0]}\n`);
        process.exitCode = 1;
      }
    });
}
