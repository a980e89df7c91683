/**
 * Sign and verify operations per second for each envelope format (CMS, JWS, COSE) with P-256 and
 * P-384 software keys: a voucher payload signed by a MASA signer whose chain ends at a root that
 * the verifier holds as its trust anchor. The first result of every case is verified, so a broken
 * codec cannot post a number.
 */
import { signEnvelope, verifyEnvelope } from '../shared/src/envelope/index.ts';
import { SoftwareSigner } from '../shared/src/crypto/software-signer.ts';
import type { VoucherFormat } from '../shared/src/media.ts';
import { generateKeyPair, issueCertificate, masaSignerProfile, rootCaProfile } from '../shared/src/pki/index.ts';
import { encodeVoucherCbor } from '../shared/src/voucher/cbor.ts';
import { encodeVoucherJson } from '../shared/src/voucher/json.ts';
import type { Voucher } from '../shared/src/voucher/model.ts';

const CASE_MS = Number(process.env.BRSKI_BENCH_CASE_MS ?? 1000);

async function opsPerSec(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < CASE_MS) { await fn(); ops++; }
  return ops / ((performance.now() - start) / 1000);
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
      results.push({ name: `${format} sign ${curve}`, opsPerSec: await opsPerSec(() => signEnvelope(format, payload, signer)) });
      results.push({ name: `${format} verify ${curve}`, opsPerSec: await opsPerSec(() => verifyEnvelope(format, signed, { anchors: [root], extraCertificates: [masaCert] })),
        note: 'signature + chain to the anchor (COSE: pledge holds the MASA cert)' });
    }
  }
  return results;
}
