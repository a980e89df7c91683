/**
 * Sign and verify operations per second for each envelope format (CMS, JWS, COSE) with P-256 and
 * P-384 software keys: a voucher payload signed by a MASA signer whose chain ends at a root that
 * the verifier holds as its trust anchor. The first result of every case is verified, so a broken
 * codec cannot post a number. Notes give CPU µs per operation (steadier than ops/s on a shared machine).
 */
import { signEnvelope, verifyEnvelope } from '../shared/src/envelope/index.ts';
import { SoftwareSigner } from '../shared/src/crypto/software-signer.ts';
import type { VoucherFormat } from '../shared/src/media.ts';
import { generateKeyPair, issueCertificate, masaSignerProfile, rootCaProfile } from '../shared/src/pki/index.ts';
import { encodeVoucherCbor } from '../shared/src/voucher/cbor.ts';
import { encodeVoucherJson } from '../shared/src/voucher/json.ts';
import type { Voucher } from '../shared/src/voucher/model.ts';

const CASE_MS = Number(process.env.BRSKI_BENCH_CASE_MS ?? 1000);

interface Rate { opsPerSec: number; cpuMicros: number }

/** Ops per second (wall) and CPU µs per op (process.cpuUsage), the latter steadier on a shared machine. */
async function measure(fn: () => Promise<unknown>): Promise<Rate> {
  for (let i = 0; i < 20; i++) await fn();
  let ops = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  while (performance.now() - start < CASE_MS) { await fn(); ops++; }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { opsPerSec: ops / seconds, cpuMicros: (cpu.user + cpu.system) / ops };
}

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const results: Array<{ name: string; opsPerSec: number; note?: string }> = [];
  for (const curve of ['P-256', 'P-384'] as const) {
    const rootKeys = generateKeyPair(curve);
    const rootSigner = new SoftwareSigner(rootKeys.privateKey);
    const root = await issueCertificate(rootCaProfile({ subject: [['CN', `bench root ${curve}`]], publicKey: rootKeys.publicKey }), { signer: rootSigner });
    const masaKeys = generateKeyPair(curve);
    const masaCert = await issueCertificate(masaSignerProfile({ subject: [['CN', `bench MASA ${curve}`]], publicKey: masaKeys.publicKey }),
      { signer: rootSigner.withCertificates([root]), certificate: root });
    const signer = new SoftwareSigner(masaKeys.privateKey, [masaCert]);
    const voucher: Voucher = {
      createdOn: new Date().toISOString(), assertion: 'logged', serialNumber: 'BENCH-000001',
      nonce: new Uint8Array(16).fill(7), pinnedDomainCert: new Uint8Array(root.raw),
    };
    for (const format of ['cms', 'jws', 'cose'] as VoucherFormat[]) {
      const payload = format === 'cose' ? encodeVoucherCbor('voucher', voucher) : encodeVoucherJson('voucher', voucher);
      const signed = await signEnvelope(format, payload, signer);
      const verified = await verifyEnvelope(format, signed, { anchors: [root], extraCertificates: [masaCert] });
      if (Buffer.compare(Buffer.from(verified.payload), Buffer.from(payload)) !== 0) throw new Error(`${format}: payload mismatch`);
      const sign = await measure(() => signEnvelope(format, payload, signer));
      results.push({ name: `${format} sign ${curve}`, opsPerSec: sign.opsPerSec, note: `${Math.round(sign.cpuMicros)} µs CPU/op` });
      // The signer's certificate travels in the envelope as the MASA sends it (JWS x5c, CMS
      // certificates, COSE unprotected x5bag), so every format parses it on verify.
      const carried = format === 'cose' ? await signEnvelope(format, payload, signer, { unprotectedX5bag: [masaCert] }) : signed;
      const verify = await measure(() => verifyEnvelope(format, carried, { anchors: [root] }));
      results.push({ name: `${format} verify ${curve}`, opsPerSec: verify.opsPerSec,
        note: `${Math.round(verify.cpuMicros)} µs CPU/op; signature + chain to the anchor, signer certificate carried in the envelope` });
    }
  }
  return results;
}
