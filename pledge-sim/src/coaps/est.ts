/**
 * EST-coaps for the constrained pledge (RFC 9148, digest §9.1, §12 pledge 16): `/sen` and
 * `/sren` with a fresh P-256 key, the single-certificate answer (CF 287) checked against the key
 * and the domain CA set, and re-enrollment over a DTLS session authenticated with the LDevID.
 */
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { COAP_CONTENT_FORMAT as CF } from '@brski/shared/media';
import { verifyChain } from '@brski/shared/pki/chain';
import { createCsr } from '@brski/shared/pki/csr';
import { certificateInfo, spkiDer } from '@brski/shared/pki/identity';
import { PledgeFailure } from '../pledge/errors.ts';
import { DEFAULT_RETRY, retryWaitSeconds } from '../pledge/transport.ts';
import { CoapsClient } from './coap-client.ts';

export interface NewCredential {
  ldevid: X509Certificate;
  /** PKCS#8 PEM of the LDevID key (the simulated device keeps it; never logged). */
  keyPem: string;
}

/**
 * Subject DN of a certificate as [attribute, value] pairs, unmodified (digest §12 pledge 16): read
 * from the DER, not from OpenSSL's display string (which escapes `,` and `+` with backslashes).
 */
export function subjectOf(cert: X509Certificate): Array<[string, string]> {
  return certificateInfo(cert).subject;
}

/** 5.03 + Max-Age (RFC 9148 §5: the server is busy, e.g. checking the audit log): waits and budget, seconds. */
export interface EnrollRetry { capSeconds: number; maxTotalSeconds: number }
const DEFAULT_ENROLL_RETRY: EnrollRetry = { capSeconds: 60, maxTotalSeconds: 600 };

/**
 * POST a CSR for a new key to `/sen` or `/sren`; the answer must certify exactly that key. A 5.03
 * is answered by sending the identical request again after Max-Age (at least 1 s, capped, jittered).
 */
export async function requestCertificate(client: CoapsClient, which: 'sen' | 'sren', subject: Array<[string, string]>,
  retry: EnrollRetry = DEFAULT_ENROLL_RETRY): Promise<NewCredential> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = await createCsr(subject, new SoftwareSigner(key.privateKey));
  const send = () => client.request({ method: 'POST', path: `/.well-known/est/${which}`, contentFormat: CF.pkcs10, accept: CF.pkixCert, payload: csr });
  const started = Date.now();
  let r = await send();
  while (r.code === '5.03') {
    // Same wait rule as the HTTPS pledge's Retry-After: at least 1 s, capped, jittered upwards.
    const wait = retryWaitSeconds(r.maxAge ?? 60, { ...DEFAULT_RETRY, capSeconds: retry.capSeconds });
    if ((Date.now() - started) / 1000 + wait > retry.maxTotalSeconds) {
      throw new PledgeFailure('retries-exhausted', `${which}: still 5.03 after ${Math.round((Date.now() - started) / 1000)} s`);
    }
    await new Promise((res) => setTimeout(res, wait * 1000));
    r = await send();
  }
  if (r.code !== '2.04') throw new PledgeFailure('enroll-refused', `${which}: CoAP ${r.code} ${r.payload.toString('utf8').slice(0, 200)}`);
  if (r.contentFormat !== CF.pkixCert) throw new PledgeFailure('protocol-error', `${which}: Content-Format ${r.contentFormat ?? '(none)'}, asked for ${CF.pkixCert}`);
  let ldevid: X509Certificate;
  try {
    ldevid = new X509Certificate(r.payload);
  } catch (e) {
    throw new PledgeFailure('ldevid-invalid', `${which} did not return a certificate`, { cause: e });
  }
  assertCertifies(ldevid, key.publicKey);
  return { ldevid, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

function assertCertifies(cert: X509Certificate, publicKey: KeyObject): void {
  if (!Buffer.from(spkiDer(cert)).equals(Buffer.from(spkiDer(publicKey)))) throw new PledgeFailure('ldevid-invalid', 'the certificate does not certify our new key');
}

/** The LDevID must chain to the domain CA set; returns the path (leaf first). */
export function chainToDomain(ldevid: X509Certificate, domainCerts: readonly X509Certificate[], now: Date): X509Certificate[] {
  try {
    return verifyChain(ldevid, [...domainCerts], domainCerts.filter((c) => c.ca), now);
  } catch (e) {
    throw new PledgeFailure('ldevid-invalid', `LDevID does not chain to the domain CAs: ${(e as Error).message}`, { cause: e });
  }
}

/** PEM the pledge presents in DTLS with its LDevID: leaf and intermediates, never the self-signed root. */
export function ldevidChainPem(path: readonly X509Certificate[]): string {
  const top = path[path.length - 1]!;
  const shown = path.length > 1 && top.checkIssued(top) ? path.slice(0, -1) : path;
  return shown.map((c) => c.toString()).join('');
}

export interface ReenrollOptions {
  host: string;
  port: number;
  /** Current LDevID chain (PEM, leaf first) and key. */
  ldevidChainPem: string;
  ldevidKeyPem: string;
  /** Domain CA set from enrollment: authenticates the registrar now, and the new LDevID. */
  domainCerts: readonly X509Certificate[];
  ciphers?: string;
  now?: () => Date;
}

/**
 * `/sren` over a DTLS session authenticated with the current LDevID. The registrar must now chain
 * to the domain CA set (no provisional state any more). On failure the caller keeps the old
 * LDevID (digest §12 pledge 16); nothing here discards it.
 */
export async function reenrollConstrained(o: ReenrollOptions): Promise<NewCredential> {
  const now = o.now ?? (() => new Date());
  let client: CoapsClient;
  try {
    client = await CoapsClient.connect({ host: o.host, port: o.port, certChain: o.ldevidChainPem, key: o.ldevidKeyPem, ...(o.ciphers ? { ciphers: o.ciphers } : {}) });
  } catch (e) {
    throw new PledgeFailure('tls-failed', (e as Error).message, { cause: e });
  }
  try {
    const chain = client.dtls.serverCertificates;
    try {
      if (!chain[0]) throw new Error('no certificate presented');
      verifyChain(chain[0], chain.slice(1), o.domainCerts.filter((c) => c.ca), now());
    } catch (e) {
      throw new PledgeFailure('registrar-pin-mismatch', `registrar not trusted by the domain CA set: ${(e as Error).message}`, { cause: e });
    }
    const current = new X509Certificate(o.ldevidChainPem);
    const next = await requestCertificate(client, 'sren', subjectOf(current));
    chainToDomain(next.ldevid, o.domainCerts, now());
    return next;
  } finally {
    client.close();
  }
}
