/**
 * `brski pledge`: one pledge, verbosely — each protocol step and its outcome. The IDevID key is
 * injected into an emulated secure element (factory key injection) and never used outside it.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { VOUCHER_FORMATS, type VoucherFormat } from '@brski/shared/media';
import { SecureElement } from '@brski/pledge-sim/se/secure-element';
import { Pledge, type PledgeEvent } from '@brski/pledge-sim/pledge/pledge';
import { isPledgeFailure } from '@brski/pledge-sim/pledge/errors';
import { discoverRegistrarCandidates } from '@brski/shared/discovery/candidates';

interface PledgeCliOptions {
  registrar?: string[];
  discoverInterface?: string;
  discoverTimeout: string;
  cert: string;
  key: string;
  trust: string[];
  format: string;
  retryCap: string;
  maxWait: string;
  out?: string;
  reenroll?: boolean;
  json?: boolean;
  proximity: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Builds a manufactured SE from an IDevID certificate (+ chain) file and its key file. */
export function secureElementFromFiles(certPath: string, keyPath: string, label?: string): SecureElement {
  const chain = parseCertificatesPem(readFileSync(certPath, 'utf8'));
  if (chain.length === 0) throw new Error(`${certPath}: no certificate found`);
  const se = new SecureElement(label ? { label } : {});
  const handle = se.injectIdevidKey(createPrivateKey(readFileSync(keyPath)), `key injected from ${keyPath}`);
  se.installCertificate(handle, chain, `IDevID from ${certPath}`);
  return se;
}

export function loadTrust(paths: readonly string[]) {
  const certs = paths.flatMap((p) => parseCertificatesPem(readFileSync(p, 'utf8')));
  if (certs.length === 0) throw new Error('no voucher trust anchor found in --trust');
  return certs;
}

export function register(program: Command): void {
  program.command('pledge')
    .description('run one pledge against a registrar: voucher, EST enrollment, telemetry (each step printed)')
    .option('--registrar <url>', 'registrar origin, e.g. https://127.0.0.1:8443 (repeat to give fall-backs); default: discover by mDNS', collect)
    .option('--discover-interface <if>', 'link to browse _brski-registrar/_brski-proxy on when no --registrar is given')
    .option('--discover-timeout <ms>', 'mDNS browse window', '4000')
    .requiredOption('--cert <pem>', 'IDevID certificate (optionally followed by its CA chain)')
    .requiredOption('--key <pem>', 'IDevID private key (injected into the emulated secure element)')
    .requiredOption('--trust <pem>', 'voucher trust anchor(s): the MASA signing certificate, or a CA used only for it (repeatable)', collect)
    .option('--format <fmt>', `voucher format: ${VOUCHER_FORMATS.join('|')}`, 'jws')
    .option('--proximity <leaf>', 'proximity leaf in the PVR: cert|pubk|pubk-sha256', 'cert')
    .option('--retry-cap <seconds>', 'cap on any Retry-After wait', '60')
    .option('--max-wait <seconds>', 'give up a request after retrying this long', '600')
    .option('--out <dir>', 'write the LDevID, its chain and the domain CA certificates here')
    .option('--reenroll', 'after onboarding, re-enroll once (simplereenroll)')
    .option('--json', 'print the result as JSON instead of the step log')
    .action(async (o: PledgeCliOptions) => {
      if (!(VOUCHER_FORMATS as readonly string[]).includes(o.format)) throw new Error(`--format must be one of ${VOUCHER_FORMATS.join(', ')}`);
      if (!['cert', 'pubk', 'pubk-sha256'].includes(o.proximity)) throw new Error('--proximity must be cert, pubk or pubk-sha256');
      // RFC 8995 §4: with no configured address, discover registrars and join proxies (mDNS); the
      // voucher's pin check, not the order found, decides which one is trusted.
      const registrars = o.registrar?.length ? o.registrar : await discoverRegistrarCandidates({
        timeoutMs: Number(o.discoverTimeout), ...(o.discoverInterface ? { interface: o.discoverInterface } : {}) });
      if (registrars.length === 0) throw new Error('no --registrar given and none discovered (_brski-registrar._tcp / _brski-proxy._tcp)');
      const se = secureElementFromFiles(o.cert, o.key);
      const log = (e: PledgeEvent): void => {
        if (!o.json) process.stdout.write(`${e.ok ? 'ok  ' : 'FAIL'} ${e.step.padEnd(14)} ${e.detail}\n`);
      };
      const pledge = new Pledge({
        se, registrars, format: o.format as VoucherFormat, trust: loadTrust(o.trust),
        proximity: o.proximity as 'cert' | 'pubk' | 'pubk-sha256',
        retry: { capSeconds: Number(o.retryCap), maxTotalSeconds: Number(o.maxWait) }, onEvent: log,
      });
      if (!o.json) process.stdout.write(`pledge ${pledge.serial}: ${o.format} voucher via ${registrars.join(', ')}\n`);
      try {
        const r = await pledge.onboard();
        const reissued = o.reenroll ? await pledge.reenroll() : undefined;
        const ldevid = reissued ?? r.ldevid;
        if (o.out) {
          mkdirSync(o.out, { recursive: true });
          const chain = se.active('ldevid')!.chain;
          writeFileSync(join(o.out, 'ldevid.pem'), chain.map((c) => c.toString()).join(''));
          writeFileSync(join(o.out, 'domain-ca.pem'), r.domainCerts.map((c) => c.toString()).join(''));
          writeFileSync(join(o.out, 'se-history.json'), JSON.stringify(se.history(), null, 2));
        }
        const summary = {
          serial: r.serial, registrar: r.registrar, ok: true, assertion: r.voucher.assertion, ldevidSerial: ldevid.serialNumber,
          ldevidSubject: ldevid.subject.replace(/\n/g, ', '), seState: se.state,
          timingsMs: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, Math.round(v * 10) / 10])),
        };
        process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n`
          : `onboarded: LDevID serial ${summary.ldevidSerial} (${summary.ldevidSubject}); SE ${se.state}; `
            + `tls ${summary.timingsMs['tls']} ms, voucher ${summary.timingsMs['voucher']} ms, enroll ${summary.timingsMs['enroll']} ms`
            + `${o.out ? `; files in ${o.out}` : ''}\n`);
      } catch (e) {
        if (!isPledgeFailure(e)) throw e;
        const out = { serial: pledge.serial, ok: false, reason: e.reason, message: e.message, registrar: e.registrar, previous: e.previous };
        process.stdout.write(o.json ? `${JSON.stringify(out, null, 2)}\n` : `failed: ${e.message}\n`);
        process.exitCode = 1;
      }
    });
}
