/**
 * The MASA's signing keys (voucher signer `signer`, factory IDevID CA `idevid.ca`) from their
 * config sections. PEM keys load synchronously in createMasa (as before); PKCS#11 keys are opened
 * by start() before anything listens, through the shared loader (loadConfiguredSigner), so a
 * missing token, wrong PIN or wrong label stops the process with an error naming the config key.
 * There is no software fallback: an unopened or failing token key only ever throws.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadConfiguredSigner } from '@brski/shared/crypto/key-loader';
import { HsmError } from '@brski/shared/crypto/pkcs11/errors';
import type { SignatureAlgorithm, Signer } from '@brski/shared/crypto/signer';
import { loadSoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { signerConfigOf, type SigningKeyConfig } from './config.ts';

/** Prefixes the config key to a loader failure; an HsmError stays an HsmError (same failure, 503 semantics). */
function named(configKey: string, err: unknown): Error {
  const message = `${configKey}: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof HsmError) return new HsmError(err.failure, message, { cause: err, ...(err.ckr ? { ckr: err.ckr } : {}) });
  return new Error(message, { cause: err });
}

/**
 * A token-held key that start() opens. Until then every use throws (a programming error: the
 * service must not serve before start()); afterwards it delegates to the PKCS#11 signer, whose
 * request-time failures are HsmErrors (503).
 */
export class PendingSigner implements Signer {
  #signer: Signer | undefined;
  constructor(readonly configKey: string, private readonly section: SigningKeyConfig) {}

  async open(): Promise<void> {
    if (this.#signer) return;
    try {
      this.#signer = await loadConfiguredSigner(signerConfigOf(this.section));
    } catch (err) {
      throw named(this.configKey, err);
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

export interface SigningKey {
  signer: Signer;
  /** The section's first certificate (the one carrying the key; checked when the key is loaded). */
  certificate: X509Certificate;
  /** Set for a PKCS#11 key: start() must open it. */
  pending?: PendingSigner;
}

/** The signer for a section: a loaded software signer, or a PendingSigner for a PKCS#11 key. */
export function signingKey(configKey: string, section: SigningKeyConfig): SigningKey {
  try {
    if (section.keyFile !== undefined) {
      const signer = loadSoftwareSigner(section.keyFile, [section.certFile, ...section.chainFiles]);
      const certificate = signer.certificates[0];
      if (!certificate) throw new Error(`${section.certFile}: no PEM certificate`);
      if (!certificate.publicKey.equals(signer.publicKey)) throw new Error(`${section.certFile} does not carry the key in ${section.keyFile}`);
      return { signer, certificate };
    }
    const certificate = parseCertificatesPem(readFileSync(section.certFile, 'utf8'))[0];
    if (!certificate) throw new Error(`${section.certFile}: no PEM certificate`);
    const pending = new PendingSigner(configKey, section);
    return { signer: pending, certificate, pending };
  } catch (err) {
    throw named(configKey, err);
  }
}
