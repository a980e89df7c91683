/**
 * End-to-end harness: a PKI directory, service configurations, MASA and registrar each in their
 * own process (Redis store), and pledges run through the `brski` CLI in further processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, type X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { SoftwareSigner, loadSoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { issueCertificate } from '@brski/shared/pki/certificate';
import { certificateToPem, generateKeyPair, privateKeyToPem } from '@brski/shared/pki/keys';
import { idevidProfile, intermediateCaProfile, registrarProfile, rootCaProfile } from '@brski/shared/pki/profiles';
import { initDemoPki, type PkiManifest } from '../../../cli/lib/pki-init.ts';
import { freePort } from '../../helpers/ports.ts';

export const ROOT = resolve(import.meta.dirname, '../../..');
const BRSKI = join(ROOT, 'bin/brski.mjs');
/** Extra node flags for every spawned process (e.g. `--cpu-prof --cpu-prof-dir=…`, which NODE_OPTIONS refuses). */
const nodeArgs = (): string[] => (process.env['BRSKI_E2E_NODE_ARGS'] ?? '').split(' ').filter(Boolean);

export interface E2ePki {
  dir: string;
  manifest: PkiManifest;
  /** Another owner's domain CA + registrar (files in dir/other). */
  other: { ca: string; caKey: string; registrar: string; registrarKey: string };
  trust: string[];
}

function write(path: string, data: string): string { writeFileSync(path, data, { mode: 0o600 }); return path; }

/** A PKI from `initDemoPki` plus a second owner domain. */
export async function createE2ePki(dir: string, devices: number): Promise<E2ePki> {
  const manifest = await initDemoPki({ out: dir, devices, force: true, serialPrefix: `E2E${randomBytes(2).toString('hex').toUpperCase()}` });
  mkdirSync(join(dir, 'other'), { recursive: true });
  const dk = generateKeyPair('P-256');
  const dSigner = new SoftwareSigner(dk.privateKey);
  const ca = await issueCertificate(rootCaProfile({ subject: [['O', 'Other Owner'], ['CN', 'Other Domain CA']], publicKey: dk.publicKey }), { signer: dSigner });
  const rk = generateKeyPair('P-256');
  const reg = await issueCertificate(registrarProfile({ subject: [['O', 'Other Owner'], ['CN', 'Other Registrar']], publicKey: rk.publicKey }),
    { signer: dSigner, certificate: ca });
  const other = {
    ca: write(join(dir, 'other/domain-ca.pem'), certificateToPem(ca)), caKey: write(join(dir, 'other/domain-ca.key'), privateKeyToPem(dk.privateKey)),
    registrar: write(join(dir, 'other/registrar.pem'), certificateToPem(reg)), registrarKey: write(join(dir, 'other/registrar.key'), privateKeyToPem(rk.privateKey)),
  };
  return { dir, manifest, other, trust: [manifest.masaSigner.cert] }; // voucher anchor only (digest §8.6)
}

/** An IDevID + key from a manufacturer nobody configured (files in dir/unknown). */
export async function unknownManufacturerPledge(dir: string, serial: string): Promise<{ cert: string; key: string }> {
  mkdirSync(join(dir, 'unknown'), { recursive: true });
  const rk = generateKeyPair('P-256');
  const rs = new SoftwareSigner(rk.privateKey);
  const root = await issueCertificate(rootCaProfile({ subject: [['CN', 'Rogue Root']], publicKey: rk.publicKey }), { signer: rs });
  const ik = generateKeyPair('P-256');
  const ica = await issueCertificate(intermediateCaProfile({ subject: [['CN', 'Rogue IDevID CA']], publicKey: ik.publicKey }), { signer: rs, certificate: root });
  const pk = generateKeyPair('P-256');
  const cert = await issueCertificate(idevidProfile(serial, 'localhost:9443', pk.publicKey), { signer: new SoftwareSigner(ik.privateKey), certificate: ica });
  return {
    cert: write(join(dir, `unknown/${serial}.pem`), certificateToPem(cert) + certificateToPem(ica)),
    key: write(join(dir, `unknown/${serial}.key`), privateKeyToPem(pk.privateKey)),
  };
}

/** A clone: same serial as an existing pledge, another key, issued by the real IDevID CA (leaked CA or copied cert). */
export async function clonedPledge(p: E2ePki, serial: string): Promise<{ cert: string; key: string }> {
  const signer = loadSoftwareSigner(p.manifest.idevidCa.key, [p.manifest.idevidCa.cert]);
  const ca = signer.certificates[0] as X509Certificate;
  const pk = generateKeyPair('P-256');
  const cert = await issueCertificate(idevidProfile(serial, p.manifest.masaUrl, pk.publicKey, { subject: [['CN', `Clone ${serial}`]] }), { signer, certificate: ca });
  mkdirSync(join(p.dir, 'clones'), { recursive: true });
  return {
    cert: write(join(p.dir, `clones/${serial}.pem`), certificateToPem(cert)),
    key: write(join(p.dir, `clones/${serial}.key`), privateKeyToPem(pk.privateKey)),
  };
}

/** The generated masa.yaml, patched for the test: port, Redis, factory on (development mode). */
export function masaYaml(p: E2ePki, port: number, redisUrl: string, prefix: string): string {
  const m = p.manifest;
  const doc = parse(readFileSync(m.masaConfig, 'utf8')) as Record<string, any>;
  doc['mode'] = 'development';
  doc['listen'] = { host: '127.0.0.1', port };
  doc['masaUrl'] = m.masaUrl;
  doc['idevid'] = { ...doc['idevid'], caCertFile: m.idevidCa.cert, caKeyFile: m.idevidCa.key };
  doc['factory'] = { ...doc['factory'], rateLimit: { max: 100_000, windowSeconds: 60 } };
  doc['admin'] = { ...doc['admin'], port: 0 };
  doc['store'] = { type: 'redis', url: redisUrl, prefix };
  doc['log'] = { level: 'warn' };
  return write(join(p.dir, `masa-${port}.yaml`), stringify(doc));
}

export interface RegistrarYamlOptions { port: number; masaPort: number; redisUrl: string; prefix: string; domain: string; other?: boolean }

/** The generated registrar.yaml, patched: port, MASA location, Redis; `other` swaps in the second domain. */
export function registrarYaml(p: E2ePki, o: RegistrarYamlOptions): string {
  const doc = parse(readFileSync(p.manifest.registrarConfig, 'utf8')) as Record<string, any>;
  doc['domain'] = o.domain;
  doc['listen'] = { host: '127.0.0.1', port: o.port };
  if (o.other) {
    doc['tls'] = { certFile: p.other.registrar, keyFile: p.other.registrarKey, chainFiles: [p.other.ca] };
    doc['ca'] = { certFile: p.other.ca, keyFile: p.other.caKey };
  }
  doc['manufacturers'] = (doc['manufacturers'] as Array<Record<string, unknown>>).map((x) => ({ ...x, masaUrl: `localhost:${o.masaPort}` }));
  doc['masa'] = { ...doc['masa'], retryAfter: 1, backgroundDelayMs: 200 };
  doc['admin'] = { ...doc['admin'], port: 0 };
  doc['store'] = { type: 'redis', url: o.redisUrl, prefix: o.prefix };
  doc['log'] = { level: 'warn' };
  return write(join(p.dir, `registrar-${o.port}.yaml`), stringify(doc));
}

/** One service in its own process: `brski masa|registrar --config <file>`; ready when its port accepts connections. */
export class ServiceProcess {
  #child: ChildProcess | undefined;
  readonly output: string[] = [];
  readonly port: number;
  constructor(readonly kind: 'masa' | 'registrar', readonly config: string) {
    this.port = (parse(readFileSync(config, 'utf8')) as { listen: { port: number } }).listen.port;
    if (!this.port) throw new Error(`${config}: the e2e harness needs a fixed listen.port`);
  }

  async start(timeoutMs = 30_000): Promise<number> {
    const child = spawn(process.execPath, [...nodeArgs(), BRSKI, this.kind, '--config', this.config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.on('data', (d: Buffer) => this.output.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => this.output.push(d.toString()));
    let exited: number | null | undefined;
    child.once('exit', (code) => { exited = code; });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(`${this.kind} exited with ${exited}:\n${this.output.join('')}`);
      if (await accepts(this.port)) return this.port;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`${this.kind} did not listen on ${this.port} within ${timeoutMs} ms:\n${this.output.join('')}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  async restart(): Promise<number> {
    await this.stop();
    return this.start();
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolveAccepts) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolveAccepts(true); });
    s.once('error', () => resolveAccepts(false));
  });
}

export interface CliResult { code: number | null; stdout: string; stderr: string; json: any }

/** Runs `brski <args>` in its own process; parses stdout as JSON when it is JSON. */
export function runBrski(args: string[], timeoutMs = 120_000, onStderr?: (text: string) => void): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [...nodeArgs(), BRSKI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); onStderr?.(stderr); });
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`brski ${args[0]} timed out:\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      let json: unknown;
      try { json = JSON.parse(stdout); } catch { json = undefined; }
      resolveRun({ code, stdout, stderr, json });
    });
  });
}

export { freePort, parseCertificatesPem };
