/**
 * RVR trust handling (digest §2.1(d)1, §6.4): the domain CA is usually unknown to the MASA, so the
 * top of the chain the registrar supplied serves as a *temporary* anchor. This is a consistency
 * check (the RVR signer really chains to the CA it asks us to pin), not authentication; the
 * authentication is the TLS client certificate being the RVR signer.
 */
import type { X509Certificate } from 'node:crypto';

/**
 * (child fingerprint, candidate issuer fingerprint) → checkIssued result. A pure function of the
 * two DER encodings (names, AKI/SKI, key usage), so it can be remembered; the pairs repeat on every
 * request from the same registrar. Bounded, oldest dropped first.
 */
const NAME_LINKS_MAX = 4096;
const nameLinks = new Map<string, boolean>();

function namesIssuer(child: X509Certificate, issuer: X509Certificate): boolean {
  const key = `${child.fingerprint256}|${issuer.fingerprint256}`;
  let v = nameLinks.get(key);
  if (v === undefined) {
    v = child.checkIssued(issuer);
    nameLinks.set(key, v);
    if (nameLinks.size > NAME_LINKS_MAX) nameLinks.delete(nameLinks.keys().next().value!);
  }
  return v;
}

/** Certificates of `pool` that no other certificate of `pool` issued (by name/AKI; no signature check yet). */
export function chainTops(pool: readonly X509Certificate[]): X509Certificate[] {
  const unique = dedupe(pool);
  return unique.filter((c) => !unique.some((other) => other !== c && other.ca && namesIssuer(c, other)));
}

export function dedupe(certs: readonly X509Certificate[]): X509Certificate[] {
  const seen = new Set<string>();
  const out: X509Certificate[] = [];
  for (const c of certs) if (!seen.has(c.fingerprint256)) { seen.add(c.fingerprint256); out.push(c); }
  return out;
}

export type PinPolicy = 'domain-ca' | 'issuing-ca' | 'registrar';

/**
 * Chooses the certificate to pin from the verified RVR chain [signer, …, top] (digest §6.4):
 * - domain-ca: the top of the chain (the domain root); the default;
 * - issuing-ca: the lowest CA above the registrar (cBRSKI's advice for nonced vouchers);
 * - registrar: the registrar's own certificate.
 */
export function selectPin(chain: readonly X509Certificate[], policy: PinPolicy): X509Certificate {
  const signer = chain[0];
  if (!signer) throw new Error('empty chain');
  switch (policy) {
    case 'registrar': return signer;
    case 'issuing-ca': return chain[1] ?? signer;
    case 'domain-ca': return chain[chain.length - 1]!;
  }
}
