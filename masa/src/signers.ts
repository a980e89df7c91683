/**
 * The MASA's signing keys (voucher signer `signer`, factory IDevID CA `idevid.ca`) from their
 * config sections. PEM keys load synchronously in createMasa (as before); PKCS#11 keys are opened
 * by start() before anything listens, through the shared loader (loadConfiguredSigner), so a
 * missing token, wrong PIN or wrong label stops the process with an error naming the config key.
 * There is no software fallback: an unopened or failing token key only ever throws.
 */
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { namedKeyError as named, PendingSigner, type SigningKeyConfig } from '@brski/shared/crypto/signing-key';
import type { Signer } from '@brski/shared/crypto/signer';
import { loadSoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';

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

export { PendingSigner };
