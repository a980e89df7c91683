/**
 * SoftHSM2 fixture: a fresh token directory + softhsm2.conf in a temp dir, SOFTHSM2_CONF pointed
 * at it BEFORE the module is (re)initialised. Any module already loaded in this process is
 * finalized first, because SoftHSM2 reads its config only in C_Initialize.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEcKeyPair, initToken, type GeneratedKey } from '../../src/crypto/pkcs11/admin.ts';
import type { Curve } from '../../src/crypto/pkcs11/ec.ts';
import { finalizeAllModules, getModule, type Pkcs11Module } from '../../src/crypto/pkcs11/module.ts';

const CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export const SOFTHSM_MODULE: string | undefined = CANDIDATES.find((p) => existsSync(p));

function hasBinary(name: string): boolean {
  try { execFileSync('which', [name], { stdio: 'ignore' }); return true; } catch { return false; }
}

export const HAVE_PKCS11_TOOL = hasBinary('pkcs11-tool');

/** Prints why the suite is skipped; the only reason accepted is a missing SoftHSM2 install. */
export function softHsmMissingReason(): string | undefined {
  if (SOFTHSM_MODULE) return undefined;
  const reason = `SoftHSM2 is not installed (no libsofthsm2.so in ${CANDIDATES.join(', ')}): PKCS#11 tests skipped`;
  console.warn(reason);
  return reason;
}

export const USER_PIN = '246810';
export const SO_PIN = '13579135';

export interface SoftHsm {
  dir: string;
  conf: string;
  tokenDir: string;
  modulePath: string;
  module: Pkcs11Module;
  pinFile: string;
  /** Initialises a token labelled `label` in this directory. */
  token(label: string): ReturnType<typeof initToken>;
  keygen(tokenLabel: string, label: string, curve: Curve, opts?: { insecureExtractable?: boolean }): GeneratedKey;
  /** Env for child processes (pkcs11-tool, openssl) that must see the same tokens. */
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export function createSoftHsm(): SoftHsm {
  if (!SOFTHSM_MODULE) throw new Error('SoftHSM2 not installed');
  finalizeAllModules();
  const dir = mkdtempSync(join(tmpdir(), 'brski-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pinFile = join(dir, 'user.pin');
  writeFileSync(pinFile, `${USER_PIN}\n`, { mode: 0o600 });
  const module = getModule(SOFTHSM_MODULE);
  const tokens = new Map<string, ReturnType<typeof initToken>>();
  return {
    dir, conf, tokenDir, modulePath: SOFTHSM_MODULE, module, pinFile,
    env: { ...process.env, SOFTHSM2_CONF: conf },
    token(label) {
      const t = initToken(module, { label, soPin: SO_PIN, userPin: USER_PIN });
      tokens.set(label, t);
      return t;
    },
    keygen(tokenLabel, label, curve, opts = {}) {
      const t = tokens.get(tokenLabel) ?? module.findToken({ token: tokenLabel, vendor: {} });
      return generateEcKeyPair(module, t, USER_PIN, { label, curve, ...opts });
    },
    cleanup() {
      finalizeAllModules();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
