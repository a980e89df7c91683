/**
 * Factory station authentication: an mTLS client certificate chaining to the station CA, valid
 * now (stations hold narrow, time-bounded credentials), with clientAuth. A chain ending at the
 * configured *test* CA is accepted only by a MASA in `development` mode — a production MASA
 * never issues IDevIDs to test credentials.
 */
import type { X509Certificate } from 'node:crypto';
import { BrskiError } from '@brski/shared/errors';
import { matchesAnchor, verifyChain } from '@brski/shared/pki/chain';
import { OID } from '@brski/shared/pki/oids';

export interface StationAuthConfig {
  mode: 'production' | 'development';
  stationAnchors: readonly X509Certificate[];
  testAnchors: readonly X509Certificate[];
}

export interface Station { id: string; certificate: X509Certificate; test: boolean }

/** The station id is the certificate's subject CN (one per station, issued by the station CA). */
export function stationIdOf(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

export function authenticateStation(peerChain: readonly X509Certificate[], cfg: StationAuthConfig, at: Date): Station {
  const leaf = peerChain[0];
  if (!leaf) throw new BrskiError('unauthenticated', 'factory: a station TLS client certificate is required');
  const anchors = [...cfg.stationAnchors, ...cfg.testAnchors];
  if (anchors.length === 0) throw new BrskiError('forbidden', 'factory: no station CA configured');
  const path = verifyChain(leaf, peerChain.slice(1), anchors, at, { requireEku: OID.clientAuth });
  const top = path[path.length - 1]!;
  const test = cfg.testAnchors.some((a) => matchesAnchor(top, a)) && !cfg.stationAnchors.some((a) => matchesAnchor(top, a));
  if (test && cfg.mode === 'production') {
    throw new BrskiError('forbidden', 'factory: test station credentials are not accepted by a production MASA',
      { detail: { station: leaf.subject.replace(/\n/g, ', '), alert: true } });
  }
  const id = stationIdOf(leaf);
  if (!id) throw new BrskiError('forbidden', 'factory: station certificate has no CN');
  return { id, certificate: leaf, test };
}
