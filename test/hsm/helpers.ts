/**
 * Fixture for the service-level HSM tests: a fresh SoftHSM2 token directory, `brski hsm` run as
 * an operator runs it (child processes), the generated configs patched only for ports and log
 * level, and small HTTPS/openssl helpers. SOFTHSM2_CONF is set in this process's environment
 * before any service is spawned, so the MASA and registrar processes see the same tokens.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { SOFTHSM_MODULE } from '../../shared/test/crypto/softhsm.ts';
import { ROOT } from '../e2e/helpers/stack.ts';

export const USER_PIN = '271828';
const BRSKI = join(ROOT, 'bin/brski.mjs');

export interface HsmLab {
  dir: string;
  tokens: string;
  pinFile: string;
  pki: string;
  /** Absolute path of a file in the PKI directory. */
  f(name: string): string;
  cleanup(): void;
}

/** Token directory + softhsm2.conf + PIN files; SOFTHSM2_CONF exported for child processes. */
export function createHsmLab(): HsmLab {
  const dir = mkdtempSync(join(tmpdir(), 'brski-hsm-svc-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pinFile = join(dir, 'user.pin');
  writeFileSync(pinFile, `${USER_PIN}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'so.pin'), '31415926\n', { mode: 0o600 });
  const pki = join(dir, 'pki');
  return { dir, tokens, pinFile, pki, f: (name) => join(pki, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Run { code: number | null; out: string; err: string }

/** `brski <args>` in a child process (synchronously; for short commands). */
export function brskiSync(...args: string[]): Run {
  const r = spawnSync(process.execPath, [BRSKI, ...args], { cwd: ROOT, env: process.env, encoding: 'utf8', timeout: 90_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `brski hsm <cmd> … --module <softhsm>`. */
export function hsm(cmd: string, ...args: string[]): Run {
  return brskiSync('hsm', cmd, ...args, '--module', SOFTHSM_MODULE!);
}

export function openssl(cwd: string, ...args: string[]): Run {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Reads a YAML config from the PKI dir, applies `patch`, writes it under `name` next to it (relative paths stay valid). */
export function patchYaml(lab: HsmLab, from: string, name: string, patch: (doc: Record<string, any>) => void): string {
  const doc = parse(readFileSync(lab.f(from), 'utf8')) as Record<string, any>;
  patch(doc);
  writeFileSync(lab.f(name), stringify(doc));
  return lab.f(name);
}

export interface HttpResult { status: number; body: Buffer; text: string }

/** HTTPS request to a service that presents a certificate chaining to `ca` (PEM file). */
export function httpsRequest(url: string, ca: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', ca: readFileSync(ca), headers: opts.headers ?? {}, timeout: 30_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => { const body = Buffer.concat(parts); resolve({ status: res.statusCode ?? 0, body, text: body.toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
