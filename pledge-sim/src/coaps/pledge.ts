/**
 * Constrained (cBRSKI) pledge: DTLS with its IDevID, COSE PVR with
 * proximity-registrar-pubk-sha256 over the key the registrar presented in DTLS, COSE voucher
 * checks (pledge-sim's voucher-check), pin check on the DTLS peer chain, CBOR telemetry, and
 * EST-coaps enrollment (digest §4.1, §9, §12 pledge 15–16). Voucher and enrollment run on the
 * same DTLS session; 5.03 answers are retried with the identical PVR after Max-Age (≤ 60 s).
 * Success enrollstatus goes over a new DTLS session authenticated with the new LDevID (§2.1(j)),
 * failures on the IDevID session (§12 pledge 7).
 */
import type { X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { COAP_CONTENT_FORMAT as CF } from '@brski/shared/media';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import type { Assertion, Voucher } from '@brski/shared/voucher/model';
import { PledgeFailure } from '../pledge/errors.ts';
import { DEFAULT_ASSERTIONS } from '../pledge/pledge.ts';
import { buildPvr, checkVoucher, validateRegistrarChain, type Pin } from '../pledge/voucher-check.ts';
import { CoapsClient, type CoapReply } from './coap-client.ts';
import { chainToDomain, ldevidChainPem, requestCertificate, subjectOf, type NewCredential } from './est.ts';

export interface ConstrainedPledgeOptions {
  host: string;
  port: number;
  serial: string;
  idevid: X509Certificate;
  /** PEM: IDevID then its chain, and its key (DTLS client authentication). */
  idevidChainPem: string;
  idevidKeyPem: string;
  /** Signs the PVR (the IDevID key). */
  signer: Signer;
  /** Manufacturer anchors plus the pre-installed MASA signing certificate (COSE vouchers carry none). */
  trust: readonly X509Certificate[];
  /** Voucher assertions accepted (default as the HTTPS pledge: proximity, verified, logged). */
  acceptAssertions?: readonly Assertion[];
  ciphers?: string;
  /** Send the success enrollstatus over a new LDevID session (default true, §2.1(j)). */
  enrollStatusOverLdevid?: boolean;
  /** Total budget for 5.03 retries. */
  maxWaitSeconds?: number;
  now?: () => Date;
}

export interface EnrollStatusOutcome {
  sent: boolean;
  /** Which credential authenticated the DTLS session the report went over. */
  via: 'ldevid' | 'idevid';
  code?: string;
  error?: string;
}

export interface ConstrainedOnboardResult {
  voucher: Voucher;
  pin: Pin;
  ldevid: X509Certificate;
  /** PKCS#8 PEM (simulated device storage; never logged). */
  ldevidKeyPem: string;
  /** LDevID + intermediates, as presented in later DTLS sessions. */
  ldevidChainPem: string;
  /** CA certificates the LDevID chains to (the pinned CA, or `/crts`). */
  domainCerts: X509Certificate[];
  cipher: string;
  registrarChain: X509Certificate[];
  /** The success enrollstatus over the LDevID session (a lost report does not fail onboarding). */
  enrollStatus: EnrollStatusOutcome;
  /** Milliseconds: DTLS handshake, voucher (rv + checks + vs), enrollment (sen … es), total. */
  timings: { tls: number; voucher: number; enroll: number; total: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectCode(r: CoapReply, code: string, reason: 'voucher-refused' | 'enroll-refused' | 'est-cacerts-failed', what: string): void {
  if (r.code !== code) throw new PledgeFailure(reason, `${what}: CoAP ${r.code} ${r.payload.toString('utf8').slice(0, 200)}`);
}

/** CBOR status telemetry (digest §7); a lost report does not undo what was done. */
async function sendStatus(client: CoapsClient, path: string, status: boolean, reason?: string): Promise<string | undefined> {
  const payload = encodeStatusTelemetry(status ? { status } : { status, reason: reason ?? 'failure' }, 'cbor');
  return client.request({ method: 'POST', path, contentFormat: CF.cbor, payload }).then((r) => r.code, () => undefined);
}

async function enrollStatusOverLdevid(o: ConstrainedPledgeOptions, chainPem: string, keyPem: string, registrar: X509Certificate): Promise<EnrollStatusOutcome> {
  let session: CoapsClient;
  try {
    session = await CoapsClient.connect({ host: o.host, port: o.port, certChain: chainPem, key: keyPem, ...(o.ciphers ? { ciphers: o.ciphers } : {}) });
  } catch (e) {
    return { sent: false, via: 'ldevid', error: (e as Error).message };
  }
  try {
    if (!session.dtls.serverCertificates[0]?.raw.equals(registrar.raw)) {
      return { sent: false, via: 'ldevid', error: 'registrar-cert-changed: the LDevID session presented another registrar certificate' };
    }
    const code = await sendStatus(session, '/.well-known/brski/es', true);
    return code === '2.04' ? { sent: true, via: 'ldevid', code } : { sent: false, via: 'ldevid', error: `es answered ${code ?? 'nothing'}` };
  } finally {
    session.close();
  }
}

export async function onboardConstrained(o: ConstrainedPledgeOptions): Promise<ConstrainedOnboardResult> {
  const now = o.now ?? (() => new Date());
  const started = performance.now();
  let client: CoapsClient;
  try {
    client = await CoapsClient.connect({ host: o.host, port: o.port, certChain: o.idevidChainPem, key: o.idevidKeyPem, ...(o.ciphers ? { ciphers: o.ciphers } : {}) });
  } catch (e) {
    throw new PledgeFailure('tls-failed', (e as Error).message, { cause: e });
  }
  const tlsMs = performance.now() - started;
  try {
    const voucherStart = performance.now();
    const registrarChain = client.dtls.serverCertificates;
    const registrarCert = registrarChain[0];
    if (!registrarCert) throw new PledgeFailure('tls-failed', 'registrar presented no certificate');
    // Provisional: the presented chain must at least be self-consistent (signatures) before we rely on it later.
    for (let i = 0; i + 1 < registrarChain.length; i++) {
      if (!registrarChain[i]!.verify(registrarChain[i + 1]!.publicKey)) throw new PledgeFailure('registrar-cert-invalid', 'registrar chain signatures do not verify');
    }

    const pvr = await buildPvr({ format: 'cose', serial: o.serial, registrarCert, proximity: 'pubk-sha256', now: now() }, o.signer);
    const deadline = Date.now() + (o.maxWaitSeconds ?? 120) * 1000;
    let reply: CoapReply;
    for (;;) {
      reply = await client.request({ method: 'POST', path: '/.well-known/brski/rv', payload: pvr.bytes, contentFormat: CF.voucherCose, accept: CF.voucherCose });
      if (reply.code !== '5.03') break;
      const wait = Math.min(60, reply.maxAge ?? 5) * 1000;
      if (Date.now() + wait > deadline) throw new PledgeFailure('retries-exhausted', 'registrar kept answering 5.03');
      await sleep(wait); // then the identical PVR (digest §12 pledge 1)
    }
    if (reply.code === '4.06' || reply.code === '4.15') throw new PledgeFailure('voucher-format-unsupported', `registrar answered ${reply.code} to a COSE PVR`);
    expectCode(reply, '2.04', 'voucher-refused', 'rv');
    if (reply.contentFormat !== CF.voucherCose) throw new PledgeFailure('voucher-format-unsupported', `voucher Content-Format ${reply.contentFormat ?? '(none)'}`);

    let checked;
    try {
      checked = await checkVoucher(new Uint8Array(reply.payload), {
        format: 'cose', serial: o.serial, idevid: o.idevid, nonce: pvr.nonce, trust: o.trust,
        acceptAssertions: o.acceptAssertions ?? DEFAULT_ASSERTIONS, proximity: 'pubk-sha256', now: now(),
      });
      validateRegistrarChain(registrarChain, checked.pin, now());
    } catch (e) {
      const f = e instanceof PledgeFailure ? e : new PledgeFailure('voucher-malformed', (e as Error).message, { cause: e });
      await sendStatus(client, '/.well-known/brski/vs', false, f.reason);
      throw f;
    }
    await sendStatus(client, '/.well-known/brski/vs', true);

    const voucherMs = performance.now() - voucherStart;

    // EST-coaps: no /att (cBRSKI pledges SHOULD NOT), IDevID subject in the CSR, single cert back.
    const enrollStart = performance.now();
    let cred: NewCredential;
    let domainCerts: X509Certificate[];
    let path: X509Certificate[];
    try {
      cred = await requestCertificate(client, 'sen', subjectOf(o.idevid));
      // Optimised enrollment: a pinned root CA (self-signed) that issued the LDevID is enough
      // (digest §4.1, §12 Pledge 16); otherwise fetch /crts (now trusted: the session's chain
      // validated against the pin) and chain the LDevID to it.
      const pinned = checked.pin.kind === 'cert' ? checked.pin.cert : undefined;
      const pinCa = pinned && pinned.ca && pinned.checkIssued(pinned) && pinned.verify(pinned.publicKey) ? pinned : undefined;
      if (pinCa && cred.ldevid.checkIssued(pinCa) && cred.ldevid.verify(pinCa.publicKey)) {
        domainCerts = [pinCa];
      } else {
        const crts = await client.request({ method: 'GET', path: '/.well-known/est/crts', accept: CF.pkcs7CertsOnly });
        expectCode(crts, '2.05', 'est-cacerts-failed', 'crts');
        domainCerts = decodeCertsOnly(new Uint8Array(crts.payload));
      }
      path = chainToDomain(cred.ldevid, domainCerts, now());
    } catch (e) {
      // Failure: reported on the same (IDevID) session (digest §12 pledge 7).
      await sendStatus(client, '/.well-known/brski/es', false, e instanceof PledgeFailure ? e.reason : 'enrollment failed');
      throw e;
    }
    const chainPem = ldevidChainPem(path);
    // Success: reported over a new DTLS session authenticated with the LDevID (§2.1(j)), to the
    // registrar we accepted (same certificate), so the registrar learns the LDevID works. Opt-out
    // (one handshake less for very constrained devices): on the IDevID session.
    let enrollStatus: EnrollStatusOutcome;
    if (o.enrollStatusOverLdevid === false) {
      const code = await sendStatus(client, '/.well-known/brski/es', true);
      enrollStatus = code === '2.04' ? { sent: true, via: 'idevid', code } : { sent: false, via: 'idevid', error: `es answered ${code ?? 'nothing'}` };
      client.close();
    } else {
      client.close();
      enrollStatus = await enrollStatusOverLdevid(o, chainPem, cred.keyPem, registrarCert);
    }
    return {
      voucher: checked.voucher, pin: checked.pin, ldevid: cred.ldevid, ldevidKeyPem: cred.keyPem, ldevidChainPem: chainPem, domainCerts,
      cipher: client.dtls.cipher, registrarChain, enrollStatus,
      timings: { tls: tlsMs, voucher: voucherMs, enroll: performance.now() - enrollStart, total: performance.now() - started },
    };
  } finally {
    client.close();
  }
}
