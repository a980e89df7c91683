/**
 * One loader for every signing key a service holds: a PEM private key file, or a key inside a
 * PKCS#11 token named by an RFC 7512 URI. Services put a `KeyRef` in their config and call
 * `loadSigner(ref, certificatePaths)`; they never need to know where the key lives.
 *
 * Fail closed: a configured PKCS#11 key that cannot be opened is an HsmError (hsm-unavailable,
 * 503) at start; there is no fallback to a software key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MalformedError } from '../errors.ts';
import { openPkcs11Signer, type Pkcs11Signer } from './pkcs11/pkcs11-signer.ts';
import { redactPkcs11Uri } from './pkcs11/uri.ts';
import type { Signer } from './signer.ts';
import { loadSoftwareSigner, parseCertificatesPem } from './software-signer.ts';

/** PKCS#11 key: URI plus where the module and the PIN come from (PIN: exactly one source, or the URI's). */
export interface Pkcs11KeyRef {
  pkcs11Uri: string;
  /** Module path; may instead be given as module-path in the URI. */
  module?: string;
  pin?: string;
  pinFile?: string;
  pinEnv?: string;
  /** Sessions per token in this process (default 4). */
  sessions?: number;
}

export interface FileKeyRef { keyFile: string }

/** A string is a `pkcs11:` URI (module/PIN in its query) or a PEM key file path. */
export type KeyRef = string | Pkcs11KeyRef | FileKeyRef;

/** The PKCS#11 key fields, shared by keyRefSchema and signerConfigSchema. */
const pkcs11Fields = {
  pkcs11Uri: z.string().startsWith('pkcs11:'),
  module: z.string().min(1).optional(),
  pin: z.string().min(1).optional(),
  pinFile: z.string().min(1).optional(),
  pinEnv: z.string().min(1).optional(),
  sessions: z.number().int().min(1).max(64).optional(),
};
const onePinSource = [(r: { pin?: string | undefined; pinFile?: string | undefined; pinEnv?: string | undefined }) =>
  [r.pin, r.pinFile, r.pinEnv].filter((v) => v !== undefined).length <= 1, { message: 'only one of pin, pinFile, pinEnv' }] as const;

/** zod schema for embedding a key reference in a service config. */
export const keyRefSchema = z.union([
  z.string().min(1),
  z.object(pkcs11Fields).strict().refine(...onePinSource),
  z.object({ keyFile: z.string().min(1) }).strict(),
]);

export function isPkcs11Ref(ref: KeyRef): boolean {
  return typeof ref === 'string' ? /^pkcs11:/i.test(ref) : 'pkcs11Uri' in ref;
}

function readCertificates(paths: readonly string[]): import('node:crypto').X509Certificate[] {
  return paths.flatMap((p) => {
    const certs = parseCertificatesPem(readFileSync(p, 'utf8'));
    if (certs.length === 0) throw new MalformedError(`no PEM certificate in ${p}`);
    return certs;
  });
}

/**
 * The signer for `ref`, carrying the certificates from `certificatePaths` (PEM files, signer
 * certificate first, then intermediates). The first certificate must hold the key's public half.
 */
export async function loadSigner(ref: KeyRef, certificatePaths: readonly string[] = []): Promise<Signer> {
  if (isPkcs11Ref(ref)) return loadPkcs11Signer(ref as string | Pkcs11KeyRef, certificatePaths);
  const keyFile = typeof ref === 'string' ? ref : (ref as FileKeyRef).keyFile;
  const signer = loadSoftwareSigner(keyFile, []);
  const certs = readCertificates(certificatePaths);
  if (certs[0] && !certs[0].publicKey.equals(signer.publicKey)) {
    throw new MalformedError(`certificate ${certificatePaths[0]} does not match the key in ${keyFile}`);
  }
  return signer.withCertificates(certs);
}

export async function loadPkcs11Signer(ref: string | Pkcs11KeyRef, certificatePaths: readonly string[] = []): Promise<Pkcs11Signer> {
  const r: Pkcs11KeyRef = typeof ref === 'string' ? { pkcs11Uri: ref } : ref;
  return openPkcs11Signer({
    uri: r.pkcs11Uri,
    ...(r.module !== undefined ? { module: r.module } : {}),
    ...(r.pin !== undefined ? { pin: r.pin } : {}),
    ...(r.pinFile !== undefined ? { pinFile: r.pinFile } : {}),
    ...(r.pinEnv !== undefined ? { pinEnv: r.pinEnv } : {}),
    ...(r.sessions !== undefined ? { size: r.sessions } : {}),
    certificates: readCertificates(certificatePaths),
  });
}

/**
 * A service's signing identity in config: certificate chain files plus EITHER a PEM key file OR a
 * PKCS#11 key. Meant to be embedded as-is in service schemas (masa `signer`, registrar `ca`, …).
 *   { certFile, chainFiles?, keyFile }
 *   { certFile, chainFiles?, pkcs11Uri, module?, pinFile? | pinEnv? | pin?, sessions? }
 */
const chainFields = { certFile: z.string().min(1), chainFiles: z.array(z.string().min(1)).optional() };
export const signerConfigSchema = z.union([
  z.object({ ...chainFields, keyFile: z.string().min(1) }).strict(),
  z.object({ ...chainFields, ...pkcs11Fields }).strict().refine(...onePinSource),
]);
export type SignerConfig = z.infer<typeof signerConfigSchema>;

/** Loads the signer a `signerConfigSchema` section describes. */
export function loadConfiguredSigner(c: SignerConfig): Promise<Signer> {
  const certs = [c.certFile, ...(c.chainFiles ?? [])];
  if ('keyFile' in c) return loadSigner({ keyFile: c.keyFile }, certs);
  const { certFile: _c, chainFiles: _ch, ...ref } = c;
  return loadSigner(ref, certs);
}

/** A key reference as it may appear in logs: never the PIN. */
export function describeKeyRef(ref: KeyRef): string {
  if (typeof ref === 'string') return /^pkcs11:/i.test(ref) ? redactPkcs11Uri(ref) : ref;
  if ('pkcs11Uri' in ref) return `${redactPkcs11Uri(ref.pkcs11Uri)}${ref.module ? ` (module ${ref.module})` : ''}`;
  return ref.keyFile;
}
