/**
 * One pledge's onboarding (RFC 8995 §5, digest §2.1): for each configured registrar in turn —
 * provisional TLS with the IDevID, PVR, voucher verification, pin check, voucher_status, EST
 * (cacerts, csrattrs, simpleenroll with a new SE key), LDevID verification and installation,
 * enrollstatus over a new connection authenticated with the LDevID. A registrar that fails is
 * abandoned and the next one tried; the failure of the last one is thrown (named reason).
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { VOUCHER_MEDIA_TYPE, bareMediaType, formatFromMediaType, type VoucherFormat } from '@brski/shared/media';
import { verifyChain } from '@brski/shared/pki/chain';
import { certificateInfo, serialNumberOf } from '@brski/shared/pki/identity';
import { OID } from '@brski/shared/pki/oids';
import type { Assertion, Voucher } from '@brski/shared/voucher/model';
import { createSeCsr } from '../se/csr.ts';
import type { SecureElement } from '../se/secure-element.ts';
import type { EcCurve, KeyHandle } from '../se/types.ts';
import { csrOptionsFromAttrs } from './csr-attrs.ts';
import { BRSKI_PATH, enroll, fetchCaCerts, fetchCsrAttrs, postStatus } from './est.ts';
import { PledgeFailure, isPledgeFailure } from './errors.ts';
import { DEFAULT_RETRY, RegistrarLink, isTransient, type ExchangeResponse, type RetryPolicy } from './transport.ts';
import { buildPvr, checkVoucher, validateRegistrarChain, type Pin, type ProximityLeaf } from './voucher-check.ts';

export type PledgeStep = 'tls' | 'pvr' | 'voucher' | 'pin' | 'voucher_status' | 'cacerts' | 'csrattrs' | 'enroll'
  | 'install' | 'enrollstatus' | 'reenroll' | 'registrar' | 'retry';

export interface PledgeEvent { step: PledgeStep; ok: boolean; detail: string; registrar?: string }

export interface PledgeConfig {
  se: SecureElement;
  /** Registrar origins (https://host:port), tried in order; discovery would append to this list. */
  registrars: readonly string[];
  format: VoucherFormat;
  /** Manufacturer trust anchors (and the MASA signing certificate for COSE vouchers). */
  trust: readonly X509Certificate[];
  acceptAssertions?: readonly Assertion[];
  allowNonceless?: boolean;
  proximity?: ProximityLeaf;
  retry?: Partial<RetryPolicy>;
  ldevidCurve?: EcCurve;
  signal?: AbortSignal;
  onEvent?: (e: PledgeEvent) => void;
  /** Voucher attempts per registrar on transport failure (each with a new nonce). Default 1 + retry.transportRetries. */
  voucherAttempts?: number;
  /**
   * Fresh attempts (new PVR, new nonce) after the registrar refused the voucher request, after a
   * back-off (RFC 8995 §5.2: "try again later"). Default 0: a refusal ends the attempt. A refused
   * PVR is never resent: its nonce may already be used at the MASA.
   */
  refusalRetries?: number;
  timeoutMs?: number;
}

export interface PhaseTimings { tls: number; voucher: number; enroll: number; total: number }

export interface OnboardResult {
  serial: string;
  registrar: string;
  voucher: Voucher;
  ldevid: X509Certificate;
  domainCerts: X509Certificate[];
  timings: PhaseTimings;
  /** Voucher attempts made (all registrars). */
  attempts: number;
}

export const DEFAULT_ASSERTIONS: readonly Assertion[] = ['proximity', 'verified', 'logged'];

export class Pledge {
  readonly serial: string;
  readonly idevid: X509Certificate;
  readonly #cfg: PledgeConfig;
  readonly #retry: RetryPolicy;
  /** State kept after onboarding for re-enrollment. */
  #domain: { registrar: string; pin: Pin; domainCerts: X509Certificate[]; curve: EcCurve } | undefined;

  constructor(cfg: PledgeConfig) {
    const idevid = cfg.se.active('idevid');
    if (!idevid) throw new PledgeFailure('protocol-error', `secure element is ${cfg.se.state}: no IDevID to onboard with`);
    if (cfg.registrars.length === 0) throw new PledgeFailure('registrar-unreachable', 'no registrar configured');
    this.idevid = idevid.chain[0]!;
    const serial = serialNumberOf(this.idevid);
    if (!serial) throw new PledgeFailure('protocol-error', 'IDevID has no subject serialNumber');
    this.serial = serial;
    this.#cfg = cfg;
    this.#retry = { ...DEFAULT_RETRY, ...cfg.retry };
  }

  #emit(step: PledgeStep, ok: boolean, detail: string, registrar?: string): void {
    this.#cfg.onEvent?.(registrar === undefined ? { step, ok, detail } : { step, ok, detail, registrar });
  }

  /** Onboards through the first registrar that works. */
  async onboard(): Promise<OnboardResult> {
    const started = performance.now();
    const failures: PledgeFailure['previous'] = [];
    let attempts = 0;
    let last: PledgeFailure | undefined;
    for (const registrar of this.#cfg.registrars) {
      try {
        const r = await this.#onboardWith(registrar, (n) => { attempts += n; });
        r.timings.total = performance.now() - started;
        return { ...r, attempts };
      } catch (e) {
        const f = isPledgeFailure(e) ? e : new PledgeFailure('protocol-error', (e as Error).message, { cause: e });
        f.registrar ??= registrar;
        this.#emit('registrar', false, `abandoned: ${f.message}`, registrar);
        if (f.reason === 'aborted') throw f;
        failures.push({ registrar, reason: f.reason });
        last = f;
      }
    }
    last!.previous = failures.slice(0, -1);
    throw last!;
  }

  async #onboardWith(origin: string, countAttempts: (n: number) => void) {
    const maxAttempts = this.#cfg.voucherAttempts ?? 1 + this.#retry.transportRetries;
    let refusals = 0;
    for (let attempt = 1; ; attempt++) {
      countAttempts(1);
      const link = this.#link(origin, 'idevid');
      try {
        const v = await this.#voucherPhase(link);
        const enrollStart = performance.now();
        const ldevid = await this.#enrollPhase(link, v.pin, v.leaf);
        return {
          serial: this.serial, registrar: link.origin, voucher: v.voucher, ldevid: ldevid.cert, domainCerts: ldevid.domainCerts,
          timings: { tls: v.tls, voucher: v.voucherMs, enroll: performance.now() - enrollStart, total: 0 },
        };
      } catch (e) {
        // Only a transport failure before the voucher arrived earns a new attempt (with a new nonce).
        if (isTransient(e) && e.phase === 'voucher' && attempt < maxAttempts) {
          this.#emit('retry', false, `attempt ${attempt}: ${e.message}`, origin);
          await this.#backoff(attempt);
          continue;
        }
        if (isPledgeFailure(e) && e.reason === 'voucher-refused' && refusals < (this.#cfg.refusalRetries ?? 0)) {
          refusals++;
          this.#emit('retry', false, `refused, new attempt ${refusals}: ${e.message}`, origin);
          await this.#backoff(attempt);
          continue;
        }
        throw e;
      } finally {
        link.close();
      }
    }
  }

  async #voucherPhase(link: RegistrarLink) {
    const { format } = this.#cfg;
    let chain: X509Certificate[];
    try {
      chain = await link.connect();
    } catch (e) {
      if (isTransient(e)) e.phase = 'voucher';
      throw e;
    }
    const tls = link.handshakes[0] ?? 0;
    this.#emit('tls', true, `connected in ${tls.toFixed(1)} ms; registrar ${chain[0]!.subject.replace(/\n/g, ', ')} accepted provisionally`, link.origin);
    const t0 = performance.now();
    const idevidSigner = this.#cfg.se.signer(this.#cfg.se.active('idevid')!.handle);
    // A PVR names the registrar it is for; a redirect to another one gets a new PVR (and nonce).
    const makePvr = async (registrarCert: X509Certificate) => {
      const built = await buildPvr({ format, serial: this.serial, registrarCert, proximity: this.#cfg.proximity ?? 'cert' }, idevidSigner);
      this.#emit('pvr', true, `${format} PVR, ${built.bytes.length} bytes, nonce ${Buffer.from(built.nonce).toString('base64')}`, link.origin);
      return built;
    };
    let pvr = await makePvr(chain[0]!);
    let res: ExchangeResponse;
    try {
      // Identical PVR bytes on every 202 retry: the transport resends `body` unchanged.
      res = await link.exchange({
        method: 'POST', path: `${BRSKI_PATH}/requestvoucher`, body: pvr.bytes, retryTransport: false,
        headers: { 'content-type': VOUCHER_MEDIA_TYPE[format], accept: VOUCHER_MEDIA_TYPE[format] },
        rebuild: async (next) => { pvr = await makePvr(next[0]!); return pvr.bytes; },
      });
    } catch (e) {
      if (isTransient(e)) e.phase = 'voucher';
      throw e;
    }
    if (res.status !== 200) {
      const reason = res.status === 406 || res.status === 415 ? 'voucher-format-unsupported' : 'voucher-refused';
      const text = res.body.subarray(0, 200).toString('utf8').trim();
      throw new PledgeFailure(reason, `requestvoucher: HTTP ${res.status}${text ? ` (${text})` : ''}`, { registrar: link.origin, detail: { status: res.status } });
    }
    const got = formatFromMediaType(String(res.headers['content-type'] ?? ''));
    if (got !== format) {
      throw new PledgeFailure('voucher-format-unsupported', `voucher Content-Type ${bareMediaType(String(res.headers['content-type'] ?? '')) || '(none)'}`, { registrar: link.origin });
    }
    let checked;
    try {
      checked = await checkVoucher(new Uint8Array(res.body), {
        format, serial: this.serial, idevid: this.idevid, nonce: pvr.nonce, trust: this.#cfg.trust,
        acceptAssertions: this.#cfg.acceptAssertions ?? DEFAULT_ASSERTIONS, allowNonceless: this.#cfg.allowNonceless ?? false,
        proximity: this.#cfg.proximity ?? 'cert',
      });
      this.#emit('voucher', true, `verified: serial ${checked.voucher.serialNumber}, assertion ${checked.voucher.assertion}, signer ${checked.signer.subject.replace(/\n/g, ', ')}`, link.origin);
      validateRegistrarChain(res.chain, checked.pin);
      this.#emit('pin', true, `registrar chain validates against pinned-domain-${checked.pin.kind}`, link.origin);
    } catch (e) {
      const f = e as PledgeFailure;
      this.#emit(f.reason === 'registrar-pin-mismatch' ? 'pin' : 'voucher', false, f.message, link.origin);
      // The reason stays uninformative to attackers (§7.1); the named reason is kept locally.
      await postStatus(link, 'voucher_status', false, 'voucher not accepted', { code: f.reason });
      throw f;
    }
    link.pinLeaf(res.chain[0]!);
    const voucherMs = performance.now() - t0;
    const st = await postStatus(link, 'voucher_status', true);
    this.#emit('voucher_status', st !== undefined, `sent (HTTP ${st ?? 'no answer'})`, link.origin);
    return { voucher: checked.voucher, pin: checked.pin, leaf: res.chain[0]!, tls, voucherMs };
  }

  async #enrollPhase(link: RegistrarLink, pin: Pin, registrarLeaf: X509Certificate) {
    const se = this.#cfg.se;
    let cert: X509Certificate;
    let path: X509Certificate[];
    let domainCerts: X509Certificate[];
    let curve: EcCurve;
    let key: KeyHandle;
    // Every enrollment failure, from cacerts on, is reported on this session (§2.1(j), §12 Pledge 7).
    try {
      domainCerts = await fetchCaCerts(link);
      this.#emit('cacerts', true, `${domainCerts.length} domain CA certificate(s)`, link.origin);
      const attrs = await fetchCsrAttrs(link);
      const csrOpts = csrOptionsFromAttrs(attrs);
      this.#emit('csrattrs', true, attrs === undefined ? 'none' : csrOpts.summary, link.origin);
      curve = csrOpts.curve ?? this.#cfg.ldevidCurve ?? 'P-256';
      key = se.generateKey('ldevid', curve, 'enroll');
      const csr = await createSeCsr(se, key, certificateInfo(this.idevid).subject, csrOpts.csr);
      const certs = await enroll(link, csr, 'simpleenroll');
      ({ cert, path } = this.#checkIssued(certs, se.getPublicKey(key), domainCerts, link.origin));
    } catch (e) {
      const f = e as PledgeFailure;
      this.#emit('enroll', false, f.message, link.origin);
      await postStatus(link, 'enrollstatus', false, 'enrollment failed', { code: f.reason ?? 'error' });
      throw e;
    }
    this.#emit('enroll', true, `LDevID serial ${cert.serialNumber} issued by ${cert.issuer.replace(/\n/g, ', ')}`, link.origin);
    se.installCertificate(key, path, 'enrolled');
    this.#emit('install', true, `secure element ${se.state}`, link.origin);
    this.#domain = { registrar: link.origin, pin, domainCerts, curve };
    // Success: report over a new TLS session authenticated with the LDevID (§2.1(j)).
    const status = this.#link(link.origin, 'ldevid');
    status.pinLeaf(registrarLeaf);
    try {
      const code = await postStatus(status, 'enrollstatus', true);
      this.#emit('enrollstatus', code !== undefined, `sent over an LDevID session (HTTP ${code ?? 'no answer'})`, link.origin);
    } finally {
      status.close();
    }
    return { cert, domainCerts };
  }

  /** The returned certificate must carry our new key and chain to the domain CA set. */
  #checkIssued(certs: X509Certificate[], publicKey: KeyObject, domainCerts: X509Certificate[], origin: string) {
    const cert = certs.find((c) => c.publicKey.equals(publicKey));
    if (!cert) throw new PledgeFailure('ldevid-invalid', 'no returned certificate carries the key of the CSR', { registrar: origin });
    let full: X509Certificate[];
    try {
      full = verifyChain(cert, certs, domainCerts, new Date());
    } catch (e) {
      throw new PledgeFailure('ldevid-invalid', `LDevID does not chain to the domain CA: ${(e as Error).message}`, { cause: e, registrar: origin });
    }
    // Installed chain: leaf and intermediates; a self-signed root stays out of the TLS chain.
    const top = full[full.length - 1]!;
    const path = full.length > 1 && top.checkIssued(top) ? full.slice(0, -1) : full;
    return { cert, path };
  }

  /** simplereenroll with a new SE key over an LDevID session; the old LDevID is retired only on success. */
  async reenroll(): Promise<X509Certificate> {
    const domain = this.#domain;
    const se = this.#cfg.se;
    const current = se.active('ldevid');
    if (!domain || !current) throw new PledgeFailure('protocol-error', 'not enrolled: nothing to re-enroll');
    const link = this.#link(domain.registrar, 'ldevid', (chain) => {
      // The registrar is now authenticated by the domain CA set (or the pin it was accepted with).
      try {
        verifyChain(chain[0]!, chain.slice(1), [...domain.domainCerts, ...(domain.pin.kind === 'cert' ? [domain.pin.cert] : [])], new Date());
      } catch (e) {
        throw new PledgeFailure('registrar-pin-mismatch', `registrar not trusted by the domain CA set: ${(e as Error).message}`, { cause: e });
      }
    });
    try {
      const old = current.chain[0]!;
      const info = certificateInfo(old);
      const san = info.extensions.get(OID.subjectAltName);
      // The curve the registrar asked for at enrollment (csrattrs), so re-enrollment meets the same profile.
      const key = se.generateKey('ldevid', domain.curve, 'reenroll');
      const csr = await createSeCsr(se, key, info.subject, san ? { extensions: [{ oid: OID.subjectAltName, critical: san.critical, value: san.value }] } : {});
      const certs = await enroll(link, csr, 'simplereenroll');
      const { cert, path } = this.#checkIssued(certs, se.getPublicKey(key), domain.domainCerts, link.origin);
      se.retire('ldevid', `replaced by ${cert.serialNumber}`);
      se.installCertificate(key, path, 'reenrolled');
      this.#emit('reenroll', true, `new LDevID serial ${cert.serialNumber}`, link.origin);
      return cert;
    } catch (e) {
      this.#emit('reenroll', false, (e as Error).message, domain.registrar);
      throw e;
    } finally {
      link.close();
    }
  }

  #link(origin: string, slot: 'idevid' | 'ldevid', verifyPeer?: (chain: X509Certificate[]) => void): RegistrarLink {
    return new RegistrarLink({
      origin, secureContext: this.#cfg.se.tlsContext(slot), retry: this.#retry,
      ...(this.#cfg.signal ? { signal: this.#cfg.signal } : {}),
      ...(this.#cfg.timeoutMs ? { timeoutMs: this.#cfg.timeoutMs } : {}),
      ...(verifyPeer ? { verifyPeer } : {}),
    });
  }

  async #backoff(attempt: number): Promise<void> {
    const s = Math.min(this.#retry.capSeconds, 0.1 * 2 ** attempt) * (1 + this.#retry.jitter * Math.random());
    try {
      await sleep(s * 1000, undefined, this.#cfg.signal ? { signal: this.#cfg.signal } : undefined);
    } catch (e) {
      throw new PledgeFailure('aborted', 'onboarding aborted', { cause: e });
    }
  }
}
