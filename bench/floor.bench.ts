/**
 * The protocol's CPU floor on this machine: what one full onboarding (voucher + EST) costs in the
 * steps no implementation may skip, with nothing else counted — no HTTP, JSON, Redis, logging,
 * certificate parsing outside TLS, or simulator bookkeeping. It answers "how many onboardings per
 * second could two cores do at best", which bounds issue 5's 300/s target independently of our code.
 *
 * Per onboarding (JWS; CMS and COSE do the same signatures):
 * - 2 mutually authenticated TLS 1.3 handshakes, both ends (pledge with its IDevID; then, after
 *   the voucher, a new session with its LDevID for the enrollment status: digest §2.1(j));
 * - 2 client TLS contexts built from PEM (one per pledge credential; Node takes key and chain only as PEM);
 * - 5 ECDSA signatures: PVR (pledge), RVR (registrar), voucher (MASA), CSR (pledge), LDevID (registrar);
 * - 9 ECDSA verifications: PVR and IDevID at the registrar and again at the MASA, RVR at the MASA,
 *   the voucher at the pledge and at the registrar, the registrar's certificate against the pin
 *   at the pledge, the CSR at the registrar;
 * - 1 key generation (the LDevID key in the pledge's secure element).
 * The registrar→MASA connection is keep-alive and not counted. Everything is measured in one
 * process (both TLS ends), CPU from process.cpuUsage (user + system, all threads).
 */
import { createSecureContext, createServer, connect, type SecureContext, type TLSSocket } from 'node:tls';
import { availableParallelism } from 'node:os';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { certificatesToPem, ldevidProfile, issueCertificate, generateKeyPair, privateKeyToPem } from '../shared/src/pki/index.ts';
import { makePki, makePledge } from '../masa/test/helpers/pki.ts';

const HANDSHAKES = Number(process.env['BRSKI_BENCH_FLOOR_N'] ?? 1500);
const IN_FLIGHT = 8;

function cpuMicros(fn: () => void, n: number): number {
  for (let i = 0; i < Math.min(50, n); i++) fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const pki = await makePki();
  const registrar = pki.domainA.registrar;
  // A few distinct pledges, as in a fleet; each brings its IDevID + vendor CA chain.
  const pledges = await Promise.all(Array.from({ length: 16 }, () => makePledge(pki)));
  const creds = pledges.map((p) => ({ key: p.idevid.keyPem, cert: certificatesToPem([p.idevid.cert, pki.vendor.cert]) }));
  const ldevidKey = generateKeyPair('P-256');
  const ldevid = await issueCertificate(ldevidProfile({ serialNumber: 'floor-ldevid', publicKey: ldevidKey.publicKey }),
    { signer: pki.domainA.ca.signer, certificate: pki.domainA.ca.cert });
  const ldevidCred = { key: privateKeyToPem(ldevidKey.privateKey), cert: certificatesToPem([ldevid, pki.domainA.ca.cert]) };

  // The registrar's listener as ours is configured: client certificate requested, checked in the app.
  let seen = 0;
  const server = createServer({ key: registrar.keyPem, cert: certificatesToPem([registrar.cert, pki.domainA.ca.cert]),
    ca: certificatesToPem([pki.vendor.cert, pki.domainA.ca.cert]), requestCert: true, rejectUnauthorized: false }, (s: TLSSocket) => {
    s.once('data', () => { if (s.getPeerCertificate().subject) seen++; s.end('y'); });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const contexts: SecureContext[] = creds.map((c) => createSecureContext(c));
  const handshake = (ctx: SecureContext): Promise<void> => new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', secureContext: ctx, rejectUnauthorized: false }, () => s.write('x'));
    s.once('data', () => { s.end(); resolve(); });
    s.on('error', reject);
  });
  const handshakes = async (n: number): Promise<void> => {
    let i = 0;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (i < n) await handshake(contexts[i++ % contexts.length]!); }));
  };
  let handshakeMicros: number;
  try {
    await handshakes(200);
    seen = 0;
    const c0 = process.cpuUsage();
    await handshakes(HANDSHAKES);
    const c = process.cpuUsage(c0);
    if (seen !== HANDSHAKES) throw new Error(`floor bench self-check failed: server saw ${seen} client certificates of ${HANDSHAKES}`);
    handshakeMicros = (c.user + c.system) / HANDSHAKES;
  } finally {
    await new Promise((r) => server.close(r));
  }

  let k = 0;
  const contextMicros = cpuMicros(() => { createSecureContext(k++ % 2 ? creds[k % creds.length]! : ldevidCred); }, 1000);
  const data = Buffer.alloc(2048, 7); // about a JWS signing input with one certificate in x5c
  const priv = generateKeyPair('P-256');
  const sig = sign('sha256', data, priv.privateKey);
  if (!verify('sha256', data, priv.publicKey, sig)) throw new Error('floor bench self-check failed: ECDSA');
  const signMicros = cpuMicros(() => sign('sha256', data, priv.privateKey), 3000);
  const verifyMicros = cpuMicros(() => verify('sha256', data, priv.publicKey, sig), 3000);
  const keygenMicros = cpuMicros(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }), 1000);

  const floor = 2 * handshakeMicros + 2 * contextMicros + 5 * signMicros + 9 * verifyMicros + keygenMicros;
  const cores = availableParallelism();
  const us = (x: number): string => `${Math.round(x)} µs`;
  return [
    { name: 'floor: mTLS 1.3 handshake, both ends (P-256, prebuilt client context)', opsPerSec: 1e6 / handshakeMicros, note: `${us(handshakeMicros)} CPU` },
    { name: 'floor: client TLS context from PEM (key + 2-certificate chain)', opsPerSec: 1e6 / contextMicros, note: `${us(contextMicros)} CPU` },
    { name: 'floor: ECDSA P-256 sign (2 KB)', opsPerSec: 1e6 / signMicros, note: us(signMicros) },
    { name: 'floor: ECDSA P-256 verify (2 KB)', opsPerSec: 1e6 / verifyMicros, note: us(verifyMicros) },
    { name: 'floor: P-256 key generation', opsPerSec: 1e6 / keygenMicros, note: us(keygenMicros) },
    { name: `floor: full onboardings/s on ${cores} cores, TLS and ECDSA only`, opsPerSec: (cores * 1e6) / floor,
      note: `${us(floor)} CPU per onboarding = 2 handshakes + 2 contexts + 5 signs + 9 verifies + 1 keygen; `
        + `nothing else counted (HTTP, JSON, Redis, logs, parsing)` },
  ];
}
