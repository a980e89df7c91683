/**
 * The MASA's voucher path on a token key, in process (the request-time half of fail-closed):
 * vouchers in all three formats are signed by the SoftHSM2 key named in `signer.pkcs11Uri` and
 * verify against the manufacturer anchor; once the token is gone every voucher request answers
 * 503 hsm-unavailable with Retry-After — no voucher, no software key — and nothing is stored.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEnvelope } from '@brski/shared/envelope/index';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { issueCertificate, masaSignerProfile } from '@brski/shared/pki/certificate';
import { certificateToPem } from '@brski/shared/pki/keys';
import type { GeneratedKey } from '../../shared/src/crypto/pkcs11/admin.ts';
import { createSoftHsm, softHsmMissingReason, type SoftHsm } from '../../shared/test/crypto/softhsm.ts';
import { MemoryMasaStore } from '../../masa/src/store/memory.ts';
import { startMasa, type Harness } from '../../masa/test/helpers/harness.ts';
import { buildPvr, buildRvr, makePki, makePledge, type Pledge, type TestPki } from '../../masa/test/helpers/pki.ts';

const skip = softHsmMissingReason();
const FORMATS: VoucherFormat[] = ['jws', 'cms', 'cose'];
const RV = '/.well-known/brski/requestvoucher';

describe.skipIf(skip !== undefined)('MASA voucher signing with a PKCS#11 signer', () => {
  let softhsm: SoftHsm;
  let key: GeneratedKey;
  let pki: TestPki;
  let h: Harness;
  let dir: string;
  let tokenCertPem: string;

  beforeAll(async () => {
    softhsm = createSoftHsm(); // SOFTHSM2_CONF for this process, before the module is initialised
    softhsm.token('masa');
    key = softhsm.keygen('masa', 'voucher', 'P-256');
    pki = await makePki();
    // The voucher signer certificate is issued by the manufacturer CA for the token's public key.
    const cert = await issueCertificate(masaSignerProfile({ subject: [['CN', 'MASA voucher signer (token)']], publicKey: key.publicKey }),
      { signer: pki.vendor.signer, certificate: pki.vendor.cert });
    tokenCertPem = certificateToPem(cert);
    dir = mkdtempSync(join(tmpdir(), 'brski-masa-hsm-'));
    writeFileSync(join(dir, 'token-signer.pem'), tokenCertPem);
    h = await startMasa(pki, new MemoryMasaStore(), (raw) => {
      raw['signer'] = { certFile: join(dir, 'token-signer.pem'), chainFiles: [], pkcs11Uri: key.uri, module: softhsm.modulePath, pinFile: softhsm.pinFile };
    });
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    softhsm?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function registered(): Promise<Pledge> {
    const p = await makePledge(pki);
    const r = await h.admin('PUT', `/admin/devices/${encodeURIComponent(p.serial)}`, {
      certificate: Buffer.from(p.idevid.cert.raw).toString('base64'), productLine: 'widget', policy: 'first-use' });
    expect(r.status, r.text).toBe(201);
    return p;
  }

  async function request(format: VoucherFormat, p: Pledge) {
    const pvr = await buildPvr(format, p, pki.domainA.registrar);
    const rvr = await buildRvr(format, p, pki.domainA, pvr);
    return h.client(pki.domainA.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE[format]);
  }

  it.each(FORMATS)('signs a %s voucher with the token key', async (format) => {
    const p = await registered();
    const reply = await request(format, p);
    expect(reply.status, reply.text).toBe(200);
    const env = await verifyEnvelope(format, new Uint8Array(reply.body), { anchors: [pki.vendor.cert] });
    // signed by the token key, not by the test PKI's software MASA signer
    expect(env.signer.publicKey.equals(key.publicKey)).toBe(true);
    expect(env.signer.publicKey.equals(pki.masaSigner.cert.publicKey)).toBe(false);
  });

  it('token gone: 503 hsm-unavailable with Retry-After for every request, nothing recorded, the MASA keeps serving', async () => {
    const p = await registered();
    for (const t of readdirSync(softhsm.tokenDir)) rmSync(join(softhsm.tokenDir, t), { recursive: true, force: true });
    for (const format of FORMATS) {
      const reply = await request(format, p);
      expect(reply.status, reply.text).toBe(503);
      expect(reply.text).toContain('hsm-unavailable');
      expect(reply.headers['retry-after']).toBe('30');
    }
    expect(await h.store.readAudit(p.serial)).toEqual([]);
    expect(h.logs.some((l) => l['code'] === 'hsm-unavailable')).toBe(true);
    const device = await h.admin('GET', `/admin/devices/${encodeURIComponent(p.serial)}`);
    expect(device.status).toBe(200);
  });
});
