/**
 * Constrained (cBRSKI) pledge: DTLS with its IDevID, COSE PVR with
 * proximity-registrar-pubk-sha256 over the key the registrar presented in DTLS, COSE voucher
 * checks (pledge-sim's voucher-check), pin check on the DTLS peer chain, CBOR telemetry, and
 * EST-coaps enrollment (digest §4.1, §9, §12 pledge 15–16). Voucher and enrollment run on the
 * same DTLS session; 5.03 answers are retried with the identical PVR after Max-Age (≤ 60 s).
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { COAP_CONTENT_FORMAT as CF } from '@brski/shared/media';
import { verifyChain } from '@brski/shared/pki/chain';
import { createCsr } from '@brski/shared/pki/csr';
import { spkiDer } from '@brski/shared/pki/identity';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import type { Assertion, Voucher } from '@brski/shared/voucher/model';
import { PledgeFailure } from '../pledge/errors.ts';
import { buildPvr, checkVoucher, validateRegistrarChain, type Pin } from '../pledge/voucher-check.ts';
import { CoapsClient, type CoapReply } from './coap-client.ts';

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
  acceptAssertions?: readonly Assertion[];
  ciphers?: string;
  /** Total budget for 5.03 retries. */
  maxWaitSeconds?: number;
  now?: () => Date;
}

export interface ConstrainedOnboardResult {
  voucher: Voucher;
  pin: Pin;
  ldevid: X509Certificate;
  ldevidKeyPem: string;
  cipher: string;
  registrarChain: X509Certificate[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectCode(r: CoapReply, code: string, reason: 'voucher-refused' | 'enroll-refused' | 'est-cacerts-failed', what: string): void {
  if (r.code !== code) throw new PledgeFailure(reason, `${what}: CoAP ${r.code} ${r.payload.toString('utf8').slice(0, 200)}`);
}

/** The IDevID subject DN, unmodified, for the CSR (digest §12 pledge 16). */
function subjectOf(cert: X509Certificate): Array<[string, string]> {
  return cert.subject.split('\n').filter(Boolean).map((l) => {
    const i = l.indexOf('=');
    return [l.slice(0, i), l.slice(i + 1)] as [string, string];
  });
}

export async function onboardConstrained(o: ConstrainedPledgeOptions): Promise<ConstrainedOnboardResult> {
  const now = o.now ?? (() => new Date());
  let client: CoapsClient;
  try {
    client = await CoapsClient.connect({ host: o.host, port: o.port, certChain: o.idevidChainPem, key: o.idevidKeyPem, ...(o.ciphers ? { ciphers: o.ciphers } : {}) });
  } catch (e) {
    throw new PledgeFailure('tls-failed', (e as Error).message, { cause: e });
  }
  try {
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
        acceptAssertions: o.acceptAssertions ?? ['proximity'], proximity: 'pubk-sha256', now: now(),
      });
      validateRegistrarChain(registrarChain, checked.pin, now());
    } catch (e) {
      const f = e instanceof PledgeFailure ? e : new PledgeFailure('voucher-malformed', (e as Error).message, { cause: e });
      await client.request({ method: 'POST', path: '/.well-known/brski/vs', contentFormat: CF.cbor,
        payload: encodeStatusTelemetry({ status: false, reason: f.message }, 'cbor') }).catch(() => undefined);
      throw f;
    }
    await client.request({ method: 'POST', path: '/.well-known/brski/vs', contentFormat: CF.cbor, payload: encodeStatusTelemetry({ status: true }, 'cbor') });

    // EST-coaps: no /att (cBRSKI pledges SHOULD NOT), IDevID subject in the CSR, single cert back.
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = await createCsr(subjectOf(o.idevid), new SoftwareSigner(key.privateKey));
    const sen = await client.request({ method: 'POST', path: '/.well-known/est/sen', contentFormat: CF.pkcs10, accept: CF.pkixCert, payload: csr });
    expectCode(sen, '2.04', 'enroll-refused', 'sen');
    let ldevid: X509Certificate;
    try {
      ldevid = new X509Certificate(sen.payload);
    } catch (e) {
      throw new PledgeFailure('ldevid-invalid', 'sen did not return a certificate', { cause: e });
    }
    if (!Buffer.from(spkiDer(ldevid)).equals(Buffer.from(spkiDer(key.publicKey)))) throw new PledgeFailure('ldevid-invalid', 'LDevID does not certify our new key');
    // Optimised enrollment: a pinned CA that issued the LDevID is enough; otherwise fetch /crts
    // (now trusted: the session's chain validated against the pin) and chain the LDevID to it.
    const pinnedIssuer = checked.pin.kind === 'cert' && checked.pin.cert.ca && ldevid.checkIssued(checked.pin.cert) && ldevid.verify(checked.pin.cert.publicKey);
    if (!pinnedIssuer) {
      const crts = await client.request({ method: 'GET', path: '/.well-known/est/crts', accept: CF.pkcs7CertsOnly });
      expectCode(crts, '2.05', 'est-cacerts-failed', 'crts');
      const cas = decodeCertsOnly(new Uint8Array(crts.payload));
      try {
        verifyChain(ldevid, cas, cas.filter((c) => c.ca), now());
      } catch (e) {
        await client.request({ method: 'POST', path: '/.well-known/brski/es', contentFormat: CF.cbor,
          payload: encodeStatusTelemetry({ status: false, reason: 'LDevID does not chain to /crts' }, 'cbor') }).catch(() => undefined);
        throw new PledgeFailure('ldevid-invalid', `LDevID does not chain to the domain CAs: ${(e as Error).message}`, { cause: e });
      }
    }
    await client.request({ method: 'POST', path: '/.well-known/brski/es', contentFormat: CF.cbor, payload: encodeStatusTelemetry({ status: true }, 'cbor') });
    return {
      voucher: checked.voucher, pin: checked.pin, ldevid, cipher: client.dtls.cipher, registrarChain,
      ldevidKeyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    };
  } finally {
    client.close();
  }
}
