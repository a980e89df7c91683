/**
 * Signing throughput with a key inside SoftHSM2 (PKCS#11, CKM_ECDSA over a Node-computed digest)
 * next to the same curve in software, for raw ES256 signatures and for voucher signing in each
 * envelope format. The token lives in a temp directory created here (SOFTHSM2_CONF set before the
 * module is initialised) and is removed afterwards. Every produced signature in the warm-up is
 * verified, so a broken signer cannot post a number.
 */
import { verify, type X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEcKeyPair, initToken } from '../shared/src/crypto/pkcs11/admin.ts';
import { finalizeAllModules, getModule } from '../shared/src/crypto/pkcs11/module.ts';
import { openPkcs11Signer } from '../shared/src/crypto/pkcs11/pkcs11-signer.ts';
import type { Signer } from '../shared/src/crypto/signer.ts';
import { SoftwareSigner } from '../shared/src/crypto/software-signer.ts';
import { signEnvelope } from '../shared/src/envelope/index.ts';
import type { VoucherFormat } from '../shared/src/media.ts';
import { generateKeyPair, issueCertificate, masaSignerProfile, rootCaProfile } from '../shared/src/pki/index.ts';
import { encodeVoucherCbor } from '../shared/src/voucher/cbor.ts';
import { encodeVoucherJson } from '../shared/src/voucher/json.ts';

const MODULES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so'];
const CASE_MS = Number(process.env.BRSKI_BENCH_HSM_MS ?? 1500);

/** Operations per second over CASE_MS with `inFlight` concurrent callers. */
async function measure(fn: () => Promise<unknown>, inFlight: number): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(); // warm-up (JIT, session pool)
  let ops = 0;
  const end = performance.now() + CASE_MS;
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) { await fn(); ops++; }
  }));
  return ops / ((performance.now() - start) / 1000);
}

function check(signer: Signer, what: string): Promise<void> {
  const data = new TextEncoder().encode(`bench check ${what}`);
  return signer.sign(data).then((sig) => {
    if (!verify('sha256', data, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error(`${what}: signature does not verify`);
  });
}

export async function run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>> {
  const modulePath = MODULES.find((p) => existsSync(p));
  if (!modulePath) return [{ name: 'SoftHSM2 not installed', opsPerSec: 0, note: 'apt install softhsm2 to run this bench' }];

  finalizeAllModules();
  const dir = mkdtempSync(join(tmpdir(), 'brski-bench-hsm-'));
  const previousConf = process.env.SOFTHSM2_CONF;
  try {
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    const pin = '11223344';
    const mod = getModule(modulePath);
    const token = initToken(mod, { label: 'bench', soPin: '55667788', userPin: pin });
    const key = generateEcKeyPair(mod, token, pin, { label: 'bench-es256', curve: 'P-256' });

    // Same certificate layout for both signers: root (software) → MASA voucher signer.
    const rootKeys = generateKeyPair('P-256');
    const root = new SoftwareSigner(rootKeys.privateKey);
    const rootCert = await issueCertificate(rootCaProfile({ subject: [['CN', 'bench root']], publicKey: rootKeys.publicKey }), { signer: root });
    const certFor = (pub: import('node:crypto').KeyObject): Promise<X509Certificate> =>
      issueCertificate(masaSignerProfile({ subject: [['CN', 'bench MASA']], publicKey: pub }), { signer: root, certificate: rootCert });
    const softKeys = generateKeyPair('P-256');
    const soft = new SoftwareSigner(softKeys.privateKey, [await certFor(softKeys.publicKey)]);
    const bare = await openPkcs11Signer({ uri: key.uri, module: modulePath, pin, size: 4 });
    const hsm = bare.withCertificates([await certFor(bare.publicKey)]);
    const blocking = await openPkcs11Signer({ uri: key.uri, module: modulePath, pin, blocking: true });
    await check(soft, 'software');
    await check(hsm, 'SoftHSM2');
    await check(blocking, 'SoftHSM2 blocking');

    const results: Array<{ name: string; opsPerSec: number; note?: string }> = [];
    const data = new Uint8Array(256).fill(7);
    results.push({ name: 'ES256 sign, software', opsPerSec: await measure(() => soft.sign(data), 1) });
    results.push({ name: 'ES256 sign, SoftHSM2, 1 in flight', opsPerSec: await measure(() => hsm.sign(data), 1), note: 'C_SignAsync, one session' });
    results.push({ name: 'ES256 sign, SoftHSM2, 8 in flight', opsPerSec: await measure(() => hsm.sign(data), 8), note: 'session pool of 4' });
    results.push({ name: 'ES256 sign, SoftHSM2, blocking C_Sign', opsPerSec: await measure(() => blocking.sign(data), 1), note: 'no worker-thread hop' });

    const voucher = {
      assertion: 'logged' as const, serialNumber: 'BENCH-000001', createdOn: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      nonce: new Uint8Array(16).fill(1), pinnedDomainCert: new Uint8Array(rootCert.raw),
    };
    const payloads: Record<VoucherFormat, Uint8Array> = {
      cms: encodeVoucherJson('voucher', voucher), jws: encodeVoucherJson('voucher', voucher), cose: encodeVoucherCbor('voucher', voucher),
    };
    for (const format of ['cms', 'jws', 'cose'] as VoucherFormat[]) {
      for (const [label, signer] of [['software', soft], ['SoftHSM2', hsm]] as const) {
        const ops = await measure(() => signEnvelope(format, payloads[format], signer), 8);
        results.push({ name: `voucher ${format.toUpperCase()} sign, ${label}`, opsPerSec: ops, note: '8 in flight' });
      }
    }
    return results;
  } finally {
    finalizeAllModules();
    if (previousConf === undefined) delete process.env.SOFTHSM2_CONF; else process.env.SOFTHSM2_CONF = previousConf;
    rmSync(dir, { recursive: true, force: true });
  }
}
