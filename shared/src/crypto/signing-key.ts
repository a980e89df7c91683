/**
 * A signing identity in a service config: a certificate chain plus EITHER a PEM key file OR a key
 * in a PKCS#11 token (docs/hsm.md). One schema and one pending-signer for every service key
 * (MASA voucher signer, factory IDevID CA, registrar domain CA).
 *
 * The schema is the shared signerConfigSchema flattened, so a bad section gets an error naming
 * the key instead of zod's bare "Invalid input" for a union; signerConfigOf() hands the loader's
 * form to loadConfiguredSigner. Token keys open asynchronously: services build a PendingSigner
 * and open it in start(), before anything listens. There is no software fallback.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { loadConfiguredSigner, type SignerConfig } from './key-loader.ts';
import { HsmError } from './pkcs11/errors.ts';
import type { SignatureAlgorithm, Signer } from './signer.ts';

const path = z.string().min(1);
const PIN_SOURCES = ['pin', 'pinFile', 'pinEnv'] as const;
const PKCS11_ONLY = ['module', ...PIN_SOURCES, 'sessions'] as const;

export const signingKeySchema = z.object({
  certFile: path,
  /** After the signer certificate: intermediates (vouchers embed them, issuers return them). */
  chainFiles: z.array(path).default([]),
  keyFile: path.optional(),
  pkcs11Uri: z.string().startsWith('pkcs11:', 'expected an RFC 7512 pkcs11: URI').optional(),
  /** PKCS#11 library (absolute path); may instead be module-path in the URI. */
  module: path.optional(),
  /** Lab only: prefer pinFile (container secret) or pinEnv. Never logged. */
  pin: z.string().min(1).optional(),
  pinFile: path.optional(),
  pinEnv: z.string().min(1).optional(),
  sessions: z.number().int().min(1).max(64).optional(),
}).strict().superRefine((s, ctx) => {
  if ((s.keyFile === undefined) === (s.pkcs11Uri === undefined)) {
    ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of keyFile (PEM) or pkcs11Uri (key in a PKCS#11 token)' });
  }
  if (s.keyFile !== undefined && /^pkcs11:/i.test(s.keyFile)) {
    ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'keyFile is a PEM file; put a pkcs11: URI in pkcs11Uri' });
  }
  if (s.keyFile !== undefined) {
    for (const k of PKCS11_ONLY) if (s[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'only with pkcs11Uri' });
  }
  if (PIN_SOURCES.filter((k) => s[k] !== undefined).length > 1) {
    ctx.addIssue({ code: 'custom', path: [], message: 'give at most one of pin, pinFile, pinEnv' });
  }
});
export type SigningKeyConfig = z.output<typeof signingKeySchema>;

/** The shared loader's form of a section (loadConfiguredSigner). */
export function signerConfigOf(s: SigningKeyConfig): SignerConfig {
  if (s.keyFile !== undefined) return { certFile: s.certFile, chainFiles: s.chainFiles, keyFile: s.keyFile };
  const opt = Object.fromEntries(PKCS11_ONLY.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));
  return { certFile: s.certFile, chainFiles: s.chainFiles, pkcs11Uri: s.pkcs11Uri!, ...opt };
}

/** Prefixes the config key to a loader failure; an HsmError stays an HsmError (same failure, 503 semantics). */
export function namedKeyError(configKey: string, err: unknown): Error {
  const message = `${configKey}: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof HsmError) return new HsmError(err.failure, message, { cause: err, ...(err.ckr ? { ckr: err.ckr } : {}) });
  return new Error(message, { cause: err });
}

/**
 * A token-held key that the service's start() opens. Until then every use throws (a programming
 * error: a service must not serve before start()); afterwards it delegates to the PKCS#11
 * signer, whose request-time failures are HsmErrors (503).
 */
export class PendingSigner implements Signer {
  #signer: Signer | undefined;
  constructor(readonly configKey: string, private readonly section: SigningKeyConfig) {}

  async open(): Promise<void> {
    if (this.#signer) return;
    try {
      this.#signer = await loadConfiguredSigner(signerConfigOf(this.section));
    } catch (err) {
      throw namedKeyError(this.configKey, err);
    }
  }

  #ready(): Signer {
    if (!this.#signer) throw new Error(`${this.configKey}: PKCS#11 key not opened (start() opens it)`);
    return this.#signer;
  }

  get algorithm(): SignatureAlgorithm { return this.#ready().algorithm; }
  get publicKey(): KeyObject { return this.#ready().publicKey; }
  get certificates(): readonly X509Certificate[] { return this.#ready().certificates; }
  sign(data: Uint8Array): Promise<Uint8Array> { return this.#ready().sign(data); }
  /** Log-safe: the PKCS#11 signer's own JSON form (no PIN), or the config key while unopened. */
  toJSON(): unknown { return this.#signer ?? { configKey: this.configKey, opened: false }; }
}
