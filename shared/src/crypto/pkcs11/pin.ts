/**
 * Where a token PIN comes from: config value, a file, an environment variable, or the URI's
 * pin-source / pin-value. The PIN is returned to the caller only; it is never logged or put in
 * an error message.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HsmError } from './errors.ts';
import type { Pkcs11Uri } from './uri.ts';

export interface PinSource {
  pin?: string;
  pinFile?: string;
  pinEnv?: string;
}

function fromFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HsmError('pin-missing', `cannot read PIN file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  // One trailing newline is an editor artefact, not part of the PIN.
  const pin = text.replace(/\r?\n$/, '');
  if (pin === '') throw new HsmError('pin-missing', `PIN file ${path} is empty`);
  return pin;
}

/**
 * Config wins over the URI; at most one config source may be set. Returns undefined when no
 * source is configured (tokens without CKF_LOGIN_REQUIRED; otherwise the pool reports pin-missing).
 */
export function resolvePin(src: PinSource, uri?: Pkcs11Uri): string | undefined {
  const given = [src.pin !== undefined, src.pinFile !== undefined, src.pinEnv !== undefined].filter(Boolean).length;
  if (given > 1) throw new HsmError('pin-missing', 'configure only one of pin, pinFile, pinEnv');
  if (src.pin !== undefined) return src.pin;
  if (src.pinFile !== undefined) return fromFile(src.pinFile);
  if (src.pinEnv !== undefined) {
    const v = process.env[src.pinEnv];
    if (v === undefined || v === '') throw new HsmError('pin-missing', `environment variable ${src.pinEnv} (PIN) is not set`);
    return v;
  }
  if (uri?.pinValue !== undefined) return uri.pinValue;
  if (uri?.pinSource !== undefined) {
    // RFC 7512 lets pin-source be any URI; only files are accepted: a '|command' form would run programs from config.
    const s = uri.pinSource;
    if (s.startsWith('file:')) return fromFile(fileURLToPath(s));
    if (s.startsWith('/')) return fromFile(s);
    throw new HsmError('pin-missing', 'pin-source must be an absolute path or a file: URI');
  }
  return undefined;
}
