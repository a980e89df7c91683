/**
 * Access to the interoperability vectors (published test material, see the vectors README).
 * The repository carries a verbatim copy under shared/test/vectors/data (checked against the
 * manifest's SHA-256 by the vector tests); BRSKI_VECTORS_DIR points elsewhere if needed.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCertificatesPem } from '../../src/crypto/software-signer.ts';

const here = dirname(fileURLToPath(import.meta.url));

export const VECTORS_DIR: string = process.env['BRSKI_VECTORS_DIR']
  ?? [resolve(here, '../vectors/data'), '/work/shared/vectors'].find((d) => existsSync(join(d, 'manifest.json')))
  ?? resolve(here, '../vectors/data');

export interface ManifestEntry {
  path: string;
  sha256: string;
  bytes: number;
  kind: string;
  format?: string;
  media_type?: string;
  verifies?: boolean;
  signer?: string;
  trust_anchor?: string;
  verify_at?: string;
  econtent_type?: string;
  notes?: string;
}

export function vectorPath(rel: string): string {
  return join(VECTORS_DIR, rel);
}

export function readVector(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(rel)));
}

export function readVectorText(rel: string): string {
  return readFileSync(vectorPath(rel), 'utf8');
}

/** One certificate from a PEM or DER file. */
export function vectorCert(rel: string): X509Certificate {
  return new X509Certificate(readFileSync(vectorPath(rel)));
}

/** Every certificate of a PEM bundle. */
export function vectorCerts(rel: string): X509Certificate[] {
  return parseCertificatesPem(readVectorText(rel));
}

let cached: ManifestEntry[] | undefined;
export function manifest(): ManifestEntry[] {
  cached ??= (JSON.parse(readVectorText('manifest.json')) as { entries: ManifestEntry[] }).entries;
  return cached;
}

export function manifestEntry(path: string): ManifestEntry {
  const e = manifest().find((x) => x.path === path);
  if (!e) throw new Error(`vector ${path} is not in the manifest`);
  return e;
}

/** Signed artifacts the manifest says verify cryptographically. */
export function verifyingVectors(): ManifestEntry[] {
  return manifest().filter((e) => e.verifies === true);
}
