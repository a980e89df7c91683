/**
 * Keys and certificates the registrar runs with, loaded once from the files the config names.
 * Checks at start-up what would otherwise fail per request: key/certificate pairs match, the
 * TLS certificate carries id-kp-cmcRA (digest §8.5), the CA certificate is a CA.
 *
 * The domain CA key may live in a PKCS#11 token (`ca.pkcs11Uri`): it is then opened by
 * openMaterialKeys() in start(), through the shared loader, and fails closed (error naming `ca`
 * at start, HsmError → 503 per request later); never a software fallback. The TLS key stays PEM:
 * Node's TLS stack cannot use a PKCS#11 key.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PendingSigner } from '@brski/shared/crypto/signing-key';
import type { Signer } from '@brski/shared/crypto/signer';
import { SoftwareSigner, parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { hasEku, certificateInfo } from '@brski/shared/pki/identity';
import { OID } from '@brski/shared/pki/oids';
import type { Manufacturer } from './authority/identity.ts';
import type { RegistrarConfig } from './config.ts';

export interface RegistrarMaterial {
  /** PEM for the TLS server and the MASA client (never logged). */
  tlsKeyPem: string;
  tlsCertPem: string;
  /** TLS EE first, then its issuers as far as known (up to the domain root). */
  tlsChain: X509Certificate[];
  /** Signs RVRs: the TLS key (digest §11 #22). */
  rvrSigner: SoftwareSigner;
  /** Software signer, or a PendingSigner (PKCS#11) that openMaterialKeys() opens. */
  caSigner: Signer;
  caCertificate: X509Certificate;
  /** Issuing CA first, then its parents: the /cacerts set. */
  caCertificates: X509Certificate[];
  manufacturers: Manufacturer[];
}

function pemFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function certs(paths: readonly string[] | undefined): X509Certificate[] {
  const out = (paths ?? []).flatMap((p) => {
    const list = parseCertificatesPem(pemFile(p));
    if (list.length === 0) throw new Error(`${p} holds no PEM certificate`);
    return list;
  });
  return out;
}

/** Orders `leaf` and the pool into leaf → issuer → … as far as issuers are present. */
export function buildChain(leaf: X509Certificate, pool: readonly X509Certificate[]): X509Certificate[] {
  const chain = [leaf];
  const used = new Set([leaf.fingerprint256]);
  for (let cur = leaf; chain.length < 8;) {
    if (cur.checkIssued(cur) && cur.verify(cur.publicKey)) break; // self-signed root
    const next = pool.find((c) => !used.has(c.fingerprint256) && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!next) break;
    chain.push(next);
    used.add(next.fingerprint256);
    cur = next;
  }
  return chain;
}

export function loadMaterial(cfg: RegistrarConfig): RegistrarMaterial {
  const tlsKeyPem = pemFile(cfg.tls.keyFile);
  const tlsCerts = [...certs([cfg.tls.certFile]), ...certs(cfg.tls.chainFiles)];
  const caCerts = [...certs([cfg.ca.certFile]), ...certs(cfg.ca.chainFiles)];
  const caCertificate = caCerts[0]!;
  const caCertificates = buildChain(caCertificate, caCerts);
  const tlsChain = buildChain(tlsCerts[0]!, [...tlsCerts, ...caCerts]);
  const rvrSigner = new SoftwareSigner(createPrivateKey(tlsKeyPem), tlsChain);
  if (!tlsChain[0]!.checkPrivateKey(createPrivateKey(tlsKeyPem))) throw new Error(`${cfg.tls.keyFile} is not the key of ${cfg.tls.certFile}`);
  if (!hasEku(tlsChain[0]!, OID.cmcRA)) throw new Error(`${cfg.tls.certFile} lacks id-kp-cmcRA (RFC 8995 §2.5.1 / RFC 7030 §3.6.1)`);
  if (!certificateInfo(caCertificate).isCa) throw new Error(`${cfg.ca.certFile} is not a CA certificate`);
  let caSigner: Signer;
  if (cfg.ca.keyFile !== undefined) {
    const caKey = createPrivateKey(pemFile(cfg.ca.keyFile));
    if (!caCertificate.checkPrivateKey(caKey)) throw new Error(`${cfg.ca.keyFile} is not the key of ${cfg.ca.certFile}`);
    caSigner = new SoftwareSigner(caKey, caCertificates);
  } else {
    caSigner = new PendingSigner('ca', cfg.ca); // the loader checks that ca.certFile carries the token key
  }
  const manufacturers: Manufacturer[] = cfg.manufacturers.map((m) => ({
    name: m.name,
    idevidAnchors: certs(m.idevidAnchorFiles),
    ...(m.masaUrl ? { masaUrl: m.masaUrl } : {}),
    ...(m.masaTlsAnchorFiles ? { masaTlsAnchors: m.masaTlsAnchorFiles.map(pemFile) } : {}),
    voucherAnchors: certs(m.voucherAnchorFiles),
    ignoreIdevidExpiry: m.ignoreIdevidExpiry,
  }));
  return {
    tlsKeyPem, tlsCertPem: tlsChain.map((c) => c.toString()).join(''), tlsChain, rvrSigner,
    caSigner, caCertificate, caCertificates, manufacturers,
  };
}

/** Opens token-held keys (the PKCS#11 domain CA); a no-op for PEM keys. Call before serving. */
export async function openMaterialKeys(m: RegistrarMaterial): Promise<void> {
  if (m.caSigner instanceof PendingSigner) await m.caSigner.open();
}
