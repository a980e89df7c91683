/**
 * PKI throughput: certificate issuance (IDevID and LDevID profiles through a software Signer),
 * CSR proof-of-possession checks, certificate identity parsing, and chain validation (cold: link
 * cache cleared every time, as for a first-seen pledge; warm: repeat pledge). Every measured
 * operation's result is checked in the warm-up, so a broken path cannot post a number.
 */
import { X509Certificate } from 'node:crypto';
import { SoftwareSigner } from '../shared/src/crypto/software-signer.ts';
import { clearChainCache, verifyChain } from '../shared/src/pki/chain.ts';
import {
  certificateInfo, createCsr, generateKeyPair, idevidIssuerOf, idevidProfile, intermediateCaProfile, issueCertificate,
  ldevidProfile, rootCaProfile, serialNumberOf, verifyCsr,
} from '../shared/src/pki/index.ts';

const CASE_MS = Number(process.env.BRSKI_BENCH_PKI_MS ?? 1500);

async function measure(fn: () => unknown): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  let ops = 0;
  const start = performance.now();
  const end = start + CASE_MS;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) await fn();
    ops += 20;
  }
  return ops / ((performance.now() - start) / 1000);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`pki bench self-check failed: ${what}`);
}

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const rootKey = generateKeyPair('P-384');
  const rootSigner = new SoftwareSigner(rootKey.privateKey);
  const root = await issueCertificate(rootCaProfile({ subject: [['CN', 'Bench Root']], publicKey: rootKey.publicKey }), { signer: rootSigner });
  const caKey = generateKeyPair('P-256');
  const caSigner = new SoftwareSigner(caKey.privateKey);
  const ca = await issueCertificate(intermediateCaProfile({ subject: [['CN', 'Bench IDevID CA']], publicKey: caKey.publicKey }), { signer: rootSigner, certificate: root });
  const issuer = { signer: caSigner, certificate: ca };
  const devKey = generateKeyPair('P-256');
  const devSigner = new SoftwareSigner(devKey.privateKey);
  let n = 0;

  const issueIdevid = () => issueCertificate(idevidProfile(`BENCH-${++n}`, 'localhost:9443', devKey.publicKey), issuer);
  const sample = await issueIdevid();
  check(sample.verify(ca.publicKey) && serialNumberOf(sample) === `BENCH-${n}`, 'IDevID issuance');

  const csr = await createCsr([['CN', 'bench'], ['serialNumber', 'BENCH-1']], devSigner);
  check(verifyCsr(csr).signatureValid, 'CSR verify');
  const issueLdevid = () => issueCertificate(ldevidProfile({ serialNumber: 'BENCH-1', publicKey: verifyCsr(csr).publicKey, lifetimeDays: 30 }), issuer);
  check((await issueLdevid()).verify(ca.publicKey), 'LDevID issuance');

  const der = Buffer.from(sample.raw);
  const parseIdentity = () => {
    const c = new X509Certificate(der);
    return [certificateInfo(c), idevidIssuerOf(c)];
  };
  const chainCold = () => { clearChainCache(); return verifyChain(new X509Certificate(der), [ca], [root]); };
  check(chainCold().length === 3, 'chain validation');
  const leaf = new X509Certificate(der);
  const chainWarm = () => verifyChain(leaf, [ca], [root]);

  return [
    { name: 'issue IDevID (P-256, software signer)', opsPerSec: await measure(issueIdevid) },
    { name: 'CSR parse + proof-of-possession verify', opsPerSec: await measure(() => verifyCsr(csr)) },
    { name: 'LDevID issuance from CSR (verify + issue)', opsPerSec: await measure(issueLdevid) },
    { name: 'IDevID parse + identity (serial, idevid-issuer)', opsPerSec: await measure(parseIdentity), note: 'new X509Certificate each time' },
    { name: 'chain validation leaf→CA→root (cold)', opsPerSec: await measure(chainCold), note: 'link cache cleared per op' },
    { name: 'chain validation leaf→CA→root (warm)', opsPerSec: await measure(chainWarm), note: 'cached issuer links' },
  ];
}
