/**
 * The voucher authority: the MASA's issuance decision as a service over (request bytes, TLS client
 * chain, store). It knows policy, not HTTP: routes hand it the body and headers and send back
 * what it returns; every refusal is a BrskiError with its own code.
 *
 * Order of checks (cheap and stateless first): Content-Type (415) → Accept (406) → RVR signature,
 * chain, cmcRA, signer = TLS client → RVR created-on window → revocation of the RVR chain (CRL,
 * network, cached) → PVR signature to our IDevID CA, serial, idevid-issuer, nonce,
 * proximity → device known (404), not revoked, key on record → ownership policy → sign → ONE
 * atomic commit (nonce SET NX, first-use owner, audit append). A refusal writes nothing.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { BrskiError } from '@brski/shared/errors';
import { certificateFromBase64 } from '@brski/shared/envelope/cert-cache';
import { signEnvelope } from '@brski/shared/envelope/index';
import { acceptUnderstood, negotiateVoucherFormat, requireVoucherFormat, VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { domainIdOf, idevidIssuerEquals, idevidIssuerOf, serialNumberOf, spkiDer, spkiSha256 } from '@brski/shared/pki/identity';
import type { Logger } from '@brski/shared/observability/logger';
import type { Metrics } from '@brski/shared/observability/metrics';
import type { Assertion, Voucher } from '@brski/shared/voucher/model';
import type { Counter } from 'prom-client';
import type { CommitRefusal, DeviceRecord, IssuanceContext, MasaStore, OwnershipPolicy } from '../store/types.ts';
import { buildAuditLog, type AuditLogResponse } from './audit-log.ts';
import { selectPin, type PinPolicy } from './chain-tops.ts';
import { decideOwnership, effectivePolicy } from './ownership.ts';
import { checkRvrFreshness, type FreshnessConfig } from './freshness.ts';
import { encodeVoucherPayload } from './payload.ts';
import { RevocationChecker, type RevocationConfig } from './revocation.ts';
import type { CrlFetcher } from './crl-fetch.ts';
import { verifyPvr, verifyRvr, type VerifiedPvr, type VerifiedRvr, type VerifierConfig } from './verify-request.ts';

export interface AuthorityConfig extends VerifierConfig {
  /** Formats this MASA speaks (request and response). */
  formats: readonly VoucherFormat[];
  pin: PinPolicy;
  /** With pin 'registrar': pin the registrar key (pinned-domain-pubk) for a PVR that named the registrar by key. */
  rpkPin: boolean;
  /** Put idevid-issuer in vouchers (needed when serials are not unique across IDevID CAs). */
  includeIdevidIssuer: boolean;
  noncelessLifetimeSeconds: number;
  nonceTtlSeconds: number;
  defaultPolicy: OwnershipPolicy;
  productLines: Readonly<Record<string, OwnershipPolicy>>;
  /** Lab mode: an unknown device whose IDevID chains to our CA is registered on first sight. */
  autoRegister: { productLine: string } | undefined;
  auditLogMaxEvents: number;
  /** RVR created-on window. */
  freshness: FreshnessConfig;
  /** CRL checking of the RVR signing chain. */
  revocation: RevocationConfig;
}

export interface VoucherRequestInput {
  contentType: string | undefined;
  accept: string | undefined;
  body: Uint8Array;
  /** TLS client chain, leaf first. */
  peerChain: readonly X509Certificate[];
  /**
   * Receives the "voucher issued" record instead of the authority's logger, so that the HTTP
   * layer logs it as the request's one line (shared/src/http/middleware.ts logOutcome).
   */
  report?: (msg: string, fields: Record<string, unknown>) => void;
  /**
   * Epoch ms after which the HTTP layer has already answered 503 + Retry-After (request timeout).
   * Nothing is stored after it: the registrar retries the identical RVR, which would otherwise
   * meet its own nonce in the ledger and be refused as a replay.
   */
  deadline?: number;
}

export interface IssuedVoucher {
  format: VoucherFormat;
  mediaType: string;
  body: Uint8Array;
  serial: string;
  assertion: Assertion;
  domainId: string;
}

export interface AuthorityDeps {
  store: MasaStore;
  signer: Signer;
  config: AuthorityConfig;
  logger: Logger;
  metrics?: Metrics;
  now?: () => Date;
  /** CRL fetcher (default: bounded HTTP(S) GET, crl-fetch.ts). */
  fetchCrl?: CrlFetcher;
}

const REFUSAL: Record<CommitRefusal, (serial: string) => BrskiError> = {
  'unknown-device': (s) => new BrskiError('unknown-device', `device ${s} is not known to this MASA`),
  'device-revoked': (s) => new BrskiError('device-revoked', `device ${s} has been revoked`),
  'replayed-nonce': (s) => new BrskiError('replayed-nonce', `nonce already used for device ${s}: replayed voucher-request`),
  'claimed-by-other-domain': (s) => new BrskiError('claimed-by-other-domain', `device ${s} is claimed by another domain`),
  'not-claimed': (s) => new BrskiError('claimed-by-other-domain', `device ${s}: the claim for this domain was withdrawn`),
};

const LINE_HINTS_MAX = 100_000;

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class VoucherAuthority {
  readonly #d: AuthorityDeps;
  readonly #issued: Counter<'format' | 'assertion'> | undefined;
  readonly #now: () => Date;
  readonly #revocation: RevocationChecker;
  /**
   * serial → product line, remembered so the next request for the device reads the line's policy
   * in the same store round trip as the device. Only a hint for which key to read: the policy
   * value itself is read fresh on every request, and a wrong hint costs one extra read.
   */
  readonly #lines = new Map<string, string>();

  constructor(deps: AuthorityDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#revocation = new RevocationChecker(deps.config.revocation, deps.logger, deps.metrics, deps.fetchCrl);
    this.#issued = deps.metrics?.counter('masa_vouchers_issued_total', 'Vouchers issued', ['format', 'assertion']);
  }

  get config(): AuthorityConfig { return this.#d.config; }

  /** 415 / 406 decisions, before any cryptography. */
  negotiate(contentType: string | undefined, accept: string | undefined): { request: VoucherFormat; response: VoucherFormat } {
    const request = requireVoucherFormat(contentType);
    if (!this.config.formats.includes(request)) {
      throw new BrskiError('unsupported-media-type', `this MASA does not accept ${VOUCHER_MEDIA_TYPE[request]}`);
    }
    // 415 when Accept names no voucher type at all ("Accept value not understood", digest §3.3);
    // 406 when it names only types this MASA does not issue, or weighs them all 0.
    if (!acceptUnderstood(accept)) throw new BrskiError('unsupported-media-type', `Accept names no voucher media type (${accept})`);
    return { request, response: negotiateVoucherFormat(accept, request, this.config.formats) };
  }

  async requestVoucher(input: VoucherRequestInput): Promise<IssuedVoucher> {
    const { request, response } = this.negotiate(input.contentType, input.accept);
    const at = this.#now();
    const v = await this.#verify(request, input, at, true);
    const { rvr, pvr, ctx, revocationInfoUntil } = v;
    const serial = rvr.serial;
    let device = ctx.device;
    if (!device && this.config.autoRegister && pvr) device = this.#autoDevice(pvr.idevid, at);
    if (!device) throw REFUSAL['unknown-device'](serial);
    if (device.revoked) throw REFUSAL['device-revoked'](serial);
    if (pvr && hex(spkiSha256(pvr.idevid)) !== device.keyFingerprint) {
      throw new BrskiError('clone-detected', `device ${serial}: the pledge's key is not the key on record`,
        { httpStatus: 403, detail: { serial, alert: true } });
    }
    // The IDevID's issuer, canonical form (digest §8.4): from the pledge's certificate, else from our record.
    const idevidIssuer = pvr ? idevidIssuerOf(pvr.idevid) : new Uint8Array(Buffer.from(device.idevidIssuer, 'base64'));
    if (!pvr && rvr.rvr.idevidIssuer && !idevidIssuerEquals(rvr.rvr.idevidIssuer, idevidIssuer)) {
      // Nonceless: no PVR was compared with it, so compare with the device record (digest §12 MASA).
      throw new BrskiError('issuer-mismatch', `idevid-issuer in the voucher-request does not match the IDevID on record for ${serial}`);
    }

    // Pin and ownership.
    const pin = selectPin(rvr.chain, this.config.pin);
    const domainIds = [pin, ...rvr.chain.filter((c) => c !== pin)].map((c) => b64(domainIdOf(c)));
    // Usually read in the same round trip as the device (#verify passes the line it remembered).
    const storedLine = ctx.linePolicy?.line === device.productLine ? ctx.linePolicy.policy
      : await this.#d.store.getProductLinePolicy(device.productLine);
    const policy = effectivePolicy(device, { defaultPolicy: this.config.defaultPolicy, configLines: this.config.productLines, storedLine });
    const decision = decideOwnership(policy, ctx.ownership, domainIds, serial);
    const nonce = rvr.rvr.nonce;
    if (!nonce && decision.assertion !== 'verified' && !rvr.authenticatedRegistrar) {
      // Nonceless vouchers outlive the request; only an owner of record or a known registrar gets one (digest §2.1(d)4).
      throw new BrskiError('forbidden', `nonceless voucher for ${serial} refused: the device is not claimed by this domain `
        + 'and the registrar is not authenticated');
    }

    // The voucher. A cBRSKI pledge that identified the registrar by its key (RPK) gets the registrar's
    // key pinned when policy pins the registrar itself (digest §6.4): it may not handle a certificate.
    const voucher: Voucher = { createdOn: at.toISOString(), assertion: decision.assertion, serialNumber: serial };
    if (this.config.pin === 'registrar' && this.config.rpkPin && pvr && (pvr.pvr.proximityRegistrarPubk || pvr.pvr.proximityRegistrarPubkSha256)) {
      voucher.pinnedDomainPubk = new Uint8Array(spkiDer(pin));
    } else {
      voucher.pinnedDomainCert = new Uint8Array(pin.raw);
    }
    let nonceText: string | undefined;
    if (nonce) {
      voucher.nonce = nonce;
      // Copy the pledge's own string when it wrote JSON (digest §11 #18), else the registrar's.
      nonceText = pvr?.format !== 'cose' && pvr?.nonceText !== undefined ? pvr.nonceText : rvr.rvrNonceText;
    } else {
      // Not beyond the revocation information the registrar chain was checked against either (digest §5.3).
      const limit = Math.min(at.getTime() + this.config.noncelessLifetimeSeconds * 1000,
        Date.parse(pin.validTo), Date.parse(rvr.registrar.validTo), revocationInfoUntil?.getTime() ?? Infinity);
      voucher.expiresOn = new Date(limit).toISOString();
    }
    if (this.config.includeIdevidIssuer) {
      voucher.idevidIssuer = idevidIssuer; // never the registrar's bytes: it may have used the bare SEQUENCE form (§11 #4)
    }
    const payload = encodeVoucherPayload(response, voucher, response === 'cose' ? undefined : nonceText);
    const signer = this.#d.signer;
    const body = await signEnvelope(response, payload, signer,
      response === 'cose' ? { unprotectedX5bag: signer.certificates } : {});

    if (input.deadline !== undefined && Date.now() >= input.deadline) {
      throw new BrskiError('unavailable', `voucher for ${serial} not committed: the request had already timed out`, { retryAfter: 1 });
    }
    if (device !== ctx.device) {
      const reg = await this.#d.store.registerDevice(device);
      if (reg.status === 'clone') throw new BrskiError('clone-detected', `device ${serial}: another key is on record`, { httpStatus: 403 });
    }
    const nonceString = nonce ? (response === 'cose' || nonceText === undefined ? b64(nonce) : nonceText) : null;
    const result = await this.#d.store.commitVoucher({
      serial, nonceTtlSeconds: this.config.nonceTtlSeconds, expectedHead: ctx.auditHead,
      ...(nonce ? { nonceKey: hex(nonce) } : {}),
      ...(decision.firstUseDomainId !== undefined ? { firstUseDomainId: decision.firstUseDomainId } : {}),
      ...(decision.requireClaimedDomainId !== undefined ? { requireClaimedDomainId: decision.requireClaimedDomainId } : {}),
      audit: { date: voucher.createdOn!, domainId: domainIds[0]!, nonce: nonceString, assertion: decision.assertion,
        format: response, registrarCert: rvr.registrar.fingerprint256.replace(/:/g, '').toLowerCase(),
        registrarSubject: rvr.registrar.subject.replace(/\n/g, ', '),
        voucherHash: createHash('sha256').update(body).digest('hex') },
    });
    if (!result.ok) throw REFUSAL[result.reason](serial);

    this.#issued?.inc({ format: response, assertion: decision.assertion });
    const issued = { serial, format: response, assertion: decision.assertion, policy, domainId: domainIds[0],
      nonced: nonce !== undefined, registrar: rvr.registrar.subject.replace(/\n/g, ', '), seq: result.entry.seq };
    if (input.report) input.report('voucher issued', issued); else this.#d.logger.info(issued, 'voucher issued');
    return { format: response, mediaType: VOUCHER_MEDIA_TYPE[response], body, serial, assertion: decision.assertion, domainId: domainIds[0]! };
  }

  /**
   * RFC 8995 §5.8: the same RVR proves the requester's identity; the log goes to a domain that
   * owns the device (claim or first-use) or was ever issued a voucher for it; everyone else gets 404.
   */
  async requestAuditLog(input: Omit<VoucherRequestInput, 'accept'>): Promise<AuditLogResponse> {
    const { request } = this.negotiate(input.contentType, undefined);
    const v = await this.#verify(request, input, this.#now());
    const serial = v.rvr.serial;
    if (!v.ctx.device) throw new BrskiError('unknown-device', `device ${serial} is not known to this MASA`);
    const ids = new Set(v.rvr.chain.map((c) => b64(domainIdOf(c))));
    const entries = await this.#d.store.readAudit(serial);
    const owner = v.ctx.ownership.claimed.some((d) => ids.has(d)) || (v.ctx.ownership.firstUse !== undefined && ids.has(v.ctx.ownership.firstUse))
      || entries.some((e) => ids.has(e.domainId));
    if (!owner) throw new BrskiError('not-found', `no audit log for device ${serial} is available to this domain`);
    this.#d.logger.info({ serial, events: entries.length }, 'audit log served');
    return buildAuditLog(entries, this.config.auditLogMaxEvents);
  }

  /**
   * `fresh`: enforce the created-on window. Only for voucher issuance: the audit log is asked for
   * with the *stored* RVR of the voucher (RFC 8995 §5.8), possibly long after, and discloses
   * nothing to anyone but the TLS-authenticated signer.
   */
  async #verify(format: VoucherFormat, input: Omit<VoucherRequestInput, 'accept'>, at: Date, fresh = false):
    Promise<{ rvr: VerifiedRvr; pvr: VerifiedPvr | undefined; ctx: IssuanceContext; revocationInfoUntil: Date | undefined }> {
    const rvr = await verifyRvr(format, input.body, input.peerChain, this.config, at);
    if (fresh) checkRvrFreshness(rvr.rvr.createdOn, at, this.config.freshness, this.#d.logger,
      { serial: rvr.serial, registrar: rvr.registrar.subject.replace(/\n/g, ', ') });
    // After the signature and signer checks, so only a registrar holding its TLS key makes us fetch anything.
    const revocationInfoUntil = await this.#revocation.check(rvr.chain, at);
    const productLine = this.#lines.get(rvr.serial);
    const ctx = await this.#d.store.issuanceContext(rvr.serial, productLine === undefined ? {} : { productLine });
    if (ctx.device && ctx.device.productLine !== productLine) this.#rememberLine(ctx.device.serial, ctx.device.productLine);
    let pvr: VerifiedPvr | undefined;
    if (rvr.rvr.priorSignedVoucherRequest) {
      pvr = await verifyPvr(rvr, this.config, at, ctx.device ? this.#deviceCert(ctx.device) : undefined);
    } else if (rvr.rvr.nonce) {
      // Without the pledge's own request nothing shows the nonce or the proximity came from the pledge.
      throw new BrskiError('forbidden', 'a nonced voucher-request must carry the prior-signed-voucher-request');
    }
    return { rvr, pvr, ctx, revocationInfoUntil };
  }

  #rememberLine(serial: string, line: string): void {
    this.#lines.set(serial, line);
    if (this.#lines.size > LINE_HINTS_MAX) this.#lines.delete(this.#lines.keys().next().value!);
  }

  #deviceCert(d: DeviceRecord): X509Certificate {
    // The shared cache (keyed by the stored text, then the full DER) rather than serial+certificate
    // serial: the same object as an IDevID parsed from a PVR's x5c, so its chain links and parsed
    // fields are reused.
    return certificateFromBase64(d.certificate, (text) => {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error(`device ${d.serial}: stored certificate is not base64`);
    });
  }

  #autoDevice(idevid: X509Certificate, at: Date): DeviceRecord {
    return {
      serial: serialNumberOf(idevid)!, idevidIssuer: b64(idevidIssuerOf(idevid)), keyFingerprint: hex(spkiSha256(idevid)),
      station: 'auto-register', issuedAt: at.toISOString(), location: '', productLine: this.config.autoRegister!.productLine,
      revoked: false, certificate: b64(new Uint8Array(idevid.raw)), certificateSerial: idevid.serialNumber.toLowerCase(),
    };
  }
}
