/**
 * Verification of a registrar voucher-request (RVR) and the pledge voucher-request (PVR) inside
 * it — every MASA check of digest §2.1(d) and §12 that needs no stored state. Each failure is a
 * BrskiError with its own code; the status comes from shared/src/errors.ts (MASA answers 403 for
 * a bad request, digest §3.3, so the registrar-facing 401 of proximity-mismatch is overridden).
 */
import { X509Certificate } from 'node:crypto';
import { BrskiError, isBrskiError } from '@brski/shared/errors';
import { detectFormat, inspectEnvelope, verifyEnvelope } from '@brski/shared/envelope/index';
import type { VoucherFormat } from '@brski/shared/media';
import { matchesAnchor, verifyChain } from '@brski/shared/pki/chain';
import { idevidIssuerEquals, idevidIssuerOf, serialNumberOf, spkiDer, spkiSha256 } from '@brski/shared/pki/identity';
import { OID } from '@brski/shared/pki/oids';
import type { VoucherRequest } from '@brski/shared/voucher/model';
import { validateVoucherData } from '@brski/shared/voucher/validate';
import { chainTops, dedupe } from './chain-tops.ts';
import { decodeRequestPayload } from './payload.ts';

export type ProximityMatch = 'exact' | 'same-issuer';

export interface VerifierConfig {
  /** Our IDevID CA(s): the PVR signer must chain to one of them. */
  idevidAnchors: readonly X509Certificate[];
  /** Registrar CAs we know; a chain ending at one of them marks the registrar as authenticated. */
  registrarAnchors: readonly X509Certificate[];
  /** Refuse registrars that do not chain to registrarAnchors. */
  requireKnownRegistrar: boolean;
  proximity: ProximityMatch;
  maxBytes: number;
}

export interface VerifiedRvr {
  format: VoucherFormat;
  rvr: VoucherRequest;
  rvrNonceText: string | undefined;
  /** [registrar (RVR signer = TLS client), …, top of the supplied chain] */
  chain: X509Certificate[];
  registrar: X509Certificate;
  embedded: X509Certificate[];
  serial: string;
  /** The chain ends at a configured registrar anchor. */
  authenticatedRegistrar: boolean;
}

export interface VerifiedPvr {
  format: VoucherFormat;
  pvr: VoucherRequest;
  nonceText: string | undefined;
  idevid: X509Certificate;
}

function wrap(prefix: string, e: unknown): never {
  if (isBrskiError(e)) {
    throw new BrskiError(e.code, `${prefix}: ${e.message}`, { cause: e, httpStatus: e.httpStatus, ...(e.detail ? { detail: e.detail } : {}) });
  }
  throw e;
}

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** RVR signature + chain (temporary anchor = top of the supplied chain), signer = TLS client, cmcRA. */
export async function verifyRvr(format: VoucherFormat, body: Uint8Array, peerChain: readonly X509Certificate[],
  cfg: VerifierConfig, at: Date): Promise<VerifiedRvr> {
  const client = peerChain[0];
  if (!client) throw new BrskiError('unauthenticated', 'a TLS client certificate is required');

  const verifyWith = (anchors: X509Certificate[], signerCertificate?: X509Certificate) => verifyEnvelope(format, body, {
    anchors, at, extraCertificates: peerChain, requireEku: OID.cmcRA, maxBytes: cfg.maxBytes, ...(signerCertificate ? { signerCertificate } : {}) });
  let env;
  try {
    // Fast path: the TLS chain's top as temporary anchor — parses the envelope's certificates once.
    env = await verifyWith(dedupe([...cfg.registrarAnchors, ...chainTops(peerChain)]));
  } catch {
    // The RVR carries a different or longer chain (or is broken): anchor at the top of everything supplied,
    // which also yields the precise error (bad signature, signer mismatch, EKU …).
    let embedded: X509Certificate[];
    try { embedded = inspectEnvelope(format, body, { maxBytes: cfg.maxBytes }).embedded; } catch (e) { wrap('voucher-request', e); }
    try {
      // CMS `certificates` and JWS `x5c` are optional (RFC 5652, digest §6.1 SHOULD): with none
      // embedded, the signer can only be the TLS client, which it must be anyway (checked below).
      env = await verifyWith(dedupe([...cfg.registrarAnchors, ...chainTops(dedupe([...embedded, ...peerChain]))]),
        embedded.length === 0 && format !== 'cose' ? client : undefined);
    } catch (e) { wrap('voucher-request', e); }
  }
  // The RVR may carry CAs above the TLS chain's top (the domain CA to pin): extend the path to the real top.
  const tops = chainTops(dedupe([...env.embedded, ...peerChain]));
  const top = env.chain[env.chain.length - 1]!;
  if (!tops.includes(top) && !tops.some((t) => t.fingerprint256 === top.fingerprint256)) {
    try {
      const above = verifyChain(top, env.embedded, tops, at);
      env = { ...env, chain: [...env.chain, ...above.slice(1)] };
    } catch (e) { wrap('voucher-request', e); }
  }

  if (env.signer.fingerprint256 !== client.fingerprint256) {
    throw new BrskiError('signer-mismatch', 'the voucher-request is not signed by the TLS client certificate',
      { detail: { signer: env.signer.subject, tlsClient: client.subject } });
  }
  const chainTop = env.chain[env.chain.length - 1]!;
  const authenticatedRegistrar = cfg.registrarAnchors.some((a) => env.chain.some((c) => matchesAnchor(c, a)) || matchesAnchor(chainTop, a));
  if (cfg.requireKnownRegistrar && !authenticatedRegistrar) {
    throw new BrskiError('untrusted-chain', 'the registrar does not chain to a registrar CA this MASA knows');
  }

  let decoded;
  try {
    decoded = decodeRequestPayload(format, env.payload);
    validateVoucherData(decoded.data, 'rvr');
  } catch (e) { wrap('voucher-request', e); }
  const rvr = decoded.data;
  if (rvr.proximityRegistrarCert || rvr.proximityRegistrarPubk || rvr.proximityRegistrarPubkSha256) {
    throw new BrskiError('invalid-voucher', 'voucher-request: proximity-registrar-* must not be in a registrar voucher-request');
  }
  return { format, rvr, rvrNonceText: decoded.nonceText, chain: env.chain, registrar: client, embedded: env.embedded,
    serial: rvr.serialNumber, authenticatedRegistrar };
}

/**
 * Format of the embedded PVR. A JSON object can only be a JWS here, so the first byte decides
 * without parsing the whole request a second time (detectFormat parses JSON fully); anything
 * that is not well-formed fails in the JWS verifier as malformed, as it would otherwise.
 */
function pvrFormat(bytes: Uint8Array): VoucherFormat | undefined {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  return bytes[i] === 0x7b /* { */ ? 'jws' : detectFormat(bytes);
}

/**
 * The prior-signed-voucher-request: signature chaining to our IDevID CA, then serial, idevid-issuer,
 * nonce and proximity consistency with the RVR. `deviceCert`: the IDevID on record (COSE PVRs
 * carry no certificate).
 */
export async function verifyPvr(v: VerifiedRvr, cfg: VerifierConfig, at: Date,
  deviceCert: X509Certificate | undefined): Promise<VerifiedPvr> {
  const bytes = v.rvr.priorSignedVoucherRequest!;
  const format = pvrFormat(bytes) ?? v.format;
  const base = { anchors: cfg.idevidAnchors, at, extraCertificates: v.embedded, maxBytes: cfg.maxBytes };
  let env;
  try {
    if (format === 'cose') {
      // The signer is the pledge's DTLS client certificate: the one on record, else one the registrar
      // supplied in the RVR x5bag with the device's serial (digest §6.3).
      const candidates = dedupe([...(deviceCert ? [deviceCert] : []),
        ...v.embedded.filter((c) => !c.ca && serialNumberOf(c) === v.serial)]);
      if (candidates.length === 0) throw new BrskiError('bad-signature', 'no IDevID certificate to verify the COSE request with');
      let last: unknown;
      for (const signerCertificate of candidates) {
        // The PVR's own x5bag is not used (digest §6.3: the pledge SHOULD NOT send one): not even parsed.
        try { env = await verifyEnvelope(format, bytes, { ...base, signerCertificate, ignoreEmbedded: true }); break; } catch (e) { last = e; }
      }
      if (!env) throw last;
    } else {
      try {
        env = await verifyEnvelope(format, bytes, base);
      } catch (e) {
        // The certificates a CMS or JWS PVR carries are unsigned hints (CMS `certificates`) or
        // optional (both; digest §6.1): absent, or damaged on the way, the IDevID on record decides.
        // Tried only after a failure, so the usual request pays nothing; if it fails too, the
        // first error stands (it names what is wrong with the request as sent).
        if (!deviceCert) throw e;
        try { env = await verifyEnvelope(format, bytes, { ...base, signerCertificate: deviceCert }); } catch { throw e; }
      }
    }
  } catch (e) { wrap('prior-signed-voucher-request', e); }

  let decoded;
  try {
    decoded = decodeRequestPayload(format, env.payload);
    validateVoucherData(decoded.data, 'pvr');
  } catch (e) { wrap('prior-signed-voucher-request', e); }
  const pvr = decoded.data;
  const idevid = env.signer;
  const rvr = v.rvr;

  // serial-number: IDevID subject = RVR = PVR (digest §2.1(d)5).
  const certSerial = serialNumberOf(idevid);
  if (certSerial !== rvr.serialNumber || pvr.serialNumber !== rvr.serialNumber) {
    throw new BrskiError('serial-mismatch', `serial-number differs: IDevID ${JSON.stringify(certSerial)}, `
      + `voucher-request ${JSON.stringify(rvr.serialNumber)}, pledge request ${JSON.stringify(pvr.serialNumber)}`);
  }
  // idevid-issuer (tolerated absent in RVRs from RFC 8995 registrars, digest §11 #6).
  const issuer = idevidIssuerOf(idevid);
  for (const [who, value] of [['voucher-request', rvr.idevidIssuer], ['pledge request', pvr.idevidIssuer]] as const) {
    if (value && !idevidIssuerEquals(value, issuer)) {
      throw new BrskiError('issuer-mismatch', `idevid-issuer in the ${who} does not match the IDevID's issuer`);
    }
  }
  // nonce: copied verbatim by the registrar.
  if (!pvr.nonce || !rvr.nonce || !bytesEqual(pvr.nonce, rvr.nonce)) {
    throw new BrskiError('nonce-mismatch', 'the voucher-request nonce differs from the pledge request nonce');
  }
  checkProximity(pvr, v.chain, cfg.proximity);
  return { format, pvr, nonceText: decoded.nonceText, idevid };
}

/** The pledge saw, in TLS, a registrar whose key is in the RVR signing chain (digest §2.1(d)5, §11 #22). */
function checkProximity(pvr: VoucherRequest, chain: readonly X509Certificate[], mode: ProximityMatch): void {
  const fail = (why: string): never => {
    throw new BrskiError('proximity-mismatch', why, { httpStatus: 403 });
  };
  if (pvr.assertion !== undefined && pvr.assertion !== 'proximity') {
    fail(`the pledge asked for assertion "${pvr.assertion}"; only proximity is supported`);
  }
  const chainSpki = (): Buffer[] => chain.map((c) => Buffer.from(spkiDer(c))); // only when a key must be compared
  if (pvr.proximityRegistrarPubkSha256) {
    const h = Buffer.from(pvr.proximityRegistrarPubkSha256);
    if (chain.some((c) => h.equals(Buffer.from(spkiSha256(c))))) return;
    fail('proximity-registrar-pubk-sha256 matches no certificate of the voucher-request signing chain');
  }
  if (pvr.proximityRegistrarPubk) {
    const k = Buffer.from(pvr.proximityRegistrarPubk);
    if (chainSpki().some((s) => s.equals(k))) return;
    fail('proximity-registrar-pubk matches no certificate of the voucher-request signing chain');
  }
  if (pvr.proximityRegistrarCert) {
    const raw = Buffer.from(pvr.proximityRegistrarCert);
    if (chain.some((c) => raw.equals(c.raw))) return; // the usual case: byte-identical, no parse needed
    let seen: X509Certificate;
    try {
      seen = new X509Certificate(pvr.proximityRegistrarCert);
    } catch {
      return fail('proximity-registrar-cert is not a certificate');
    }
    const s = Buffer.from(spkiDer(seen));
    if (chainSpki().some((c) => c.equals(s))) return;
    // Policy flag (digest §11 #22): the TLS certificate the pledge saw was issued by a CA of the chain.
    if (mode === 'same-issuer' && chain.some((ca) => ca.ca && seen.checkIssued(ca) && seen.verify(ca.publicKey))) return;
    fail('proximity-registrar-cert is not the registrar that signed the voucher-request');
  }
  fail('the pledge request carries no proximity-registrar-cert/-pubk/-pubk-sha256');
}
