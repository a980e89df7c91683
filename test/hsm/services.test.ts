/**
 * The services on token keys (issue #7): a fresh SoftHSM2 token, `brski hsm init-token` and
 * `brski hsm pki-init` run as an operator would, then the MASA (voucher signer + factory IDevID
 * CA) and the registrar (domain CA) started with `brski masa|registrar --config` on the generated
 * configs, which reference the keys by pkcs11: URI. Pledges onboard in all three formats; every
 * artefact is checked with `brski voucher verify` or openssl. Then the fail-closed cases: wrong
 * PIN, unknown token, unknown key label refuse to start; a token that disappears while the
 * services run turns each signing request into a 503 — never a software-key signature.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { FactoryStation } from '../../pledge-sim/src/factory/station.ts';
import { Pledge } from '../../pledge-sim/src/pledge/pledge.ts';
import { DEFAULT_RETRY, RegistrarLink } from '../../pledge-sim/src/pledge/transport.ts';
import { buildPvr } from '../../pledge-sim/src/pledge/voucher-check.ts';
import { secureElementFromFiles } from '../../cli/commands/pledge.ts';
import { softHsmMissingReason } from '../../shared/test/crypto/softhsm.ts';
import { ServiceProcess, freePort, runBrski } from '../e2e/helpers/stack.ts';
import { USER_PIN, brskiSync, createHsmLab, hsm, httpsRequest, openssl, patchYaml, type HsmLab } from './helpers.ts';

const skip = softHsmMissingReason();
const FORMATS = ['jws', 'cms', 'cose'] as const;

describe.skipIf(skip !== undefined)('MASA, factory and registrar on PKCS#11 keys (SoftHSM2)', () => {
  let lab: HsmLab;
  let masa: ServiceProcess;
  let registrar: ServiceProcess;
  let masaPort: number;
  let registrarUrl: string;
  let adminUrl: string;
  let adminToken: string;
  const pem = (name: string) => parseCertificatesPem(readFileSync(lab.f(name), 'utf8'));
  const pledgeFiles = (i: number) => ({ cert: lab.f(`pledges/PSIM-HSM-${String(i).padStart(6, '0')}.pem`), key: lab.f(`pledges/PSIM-HSM-${String(i).padStart(6, '0')}.key`) });
  const admin = (method: string, path: string, body?: unknown) => httpsRequest(`${adminUrl}${path}`, lab.f('domain-ca.pem'), {
    method, headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const crl = () => httpsRequest(`${registrarUrl}/.well-known/est/crl`, lab.f('domain-ca.pem'));
  const station = () => new FactoryStation({
    endpoint: `https://127.0.0.1:${masaPort}/factory/idevid`, key: readFileSync(lab.f('station.key'), 'utf8'), certificates: pem('station.pem'),
    masaTlsAnchors: pem('manufacturer-ca.pem'), idevidAnchors: pem('manufacturer-ca.pem'), retries: 0,
  });

  beforeAll(async () => {
    lab = createHsmLab();
    const init = hsm('init-token', '--label', 'services', '--pin-file', lab.pinFile, '--so-pin-file', join(lab.dir, 'so.pin'));
    expect(init.code, init.err).toBe(0);
    masaPort = await freePort();
    const pki = hsm('pki-init', '--token', 'services', '--out', lab.pki, '--pin-file', lab.pinFile, '--devices', '6', '--masa-url', `localhost:${masaPort}`);
    expect(pki.code, pki.err).toBe(0);

    // Only ports and log level change: the key sections are used exactly as pki-init wrote them.
    const masaCfg = patchYaml(lab, 'masa.yaml', 'masa-test.yaml', (d) => {
      d['listen'] = { host: '127.0.0.1', port: masaPort };
      d['admin'] = { ...d['admin'], port: 0 };
      d['log'] = { level: 'warn' };
    });
    const [regPort, regAdminPort] = [await freePort(), await freePort()];
    const regCfg = patchYaml(lab, 'registrar.yaml', 'registrar-test.yaml', (d) => {
      d['listen'] = { host: '127.0.0.1', port: regPort };
      d['admin'] = { ...d['admin'], port: regAdminPort };
      d['masa'] = { retryAfter: 1, backgroundDelayMs: 200 };
      d['log'] = { level: 'warn' };
    });
    registrarUrl = `https://127.0.0.1:${regPort}`;
    adminUrl = `https://127.0.0.1:${regAdminPort}`;
    adminToken = readFileSync(lab.f('registrar-admin.token'), 'utf8').trim();
    masa = new ServiceProcess('masa', masaCfg);
    registrar = new ServiceProcess('registrar', regCfg);
    await masa.start(60_000);
    await registrar.start(60_000);
  }, 240_000);

  afterAll(async () => {
    await registrar?.stop();
    await masa?.stop();
    lab?.cleanup();
  });

  it('pki-init keeps the CA and voucher keys in the token and the configs reference them by URI (no key file, no PIN)', () => {
    const keys = JSON.parse(hsm('list', '--token', 'services', '--json', '--pin-file', lab.pinFile).out) as Array<Record<string, unknown>>;
    expect(keys.map((k) => k['label']).sort()).toEqual(['brski-domain-ca', 'brski-idevid-ca', 'brski-manufacturer-root', 'brski-masa-voucher']);
    for (const k of keys) expect(k).toMatchObject({ sensitive: true, extractable: false, neverExtractable: true });

    const masaDoc = parse(readFileSync(lab.f('masa.yaml'), 'utf8')) as Record<string, any>;
    const regDoc = parse(readFileSync(lab.f('registrar.yaml'), 'utf8')) as Record<string, any>;
    for (const [name, section, label] of [['signer', masaDoc['signer'], 'brski-masa-voucher'], ['idevid.ca', masaDoc['idevid']['ca'], 'brski-idevid-ca'],
      ['ca', regDoc['ca'], 'brski-domain-ca']] as const) {
      expect(section.pkcs11Uri, name).toMatch(new RegExp(`^pkcs11:token=services;serial=[0-9a-f]+;object=${label};type=private`));
      expect(section.keyFile, name).toBeUndefined();
      expect(section.pinFile, name).toBe(lab.pinFile);
    }
    for (const f of ['masa.yaml', 'registrar.yaml', 'hsm-keys.yaml']) expect(readFileSync(lab.f(f), 'utf8')).not.toContain(USER_PIN);
    for (const f of ['masa-signer.key', 'idevid-ca.key', 'domain-ca.key', 'manufacturer-ca.key']) expect(existsSync(lab.f(f)), f).toBe(false);
  });

  FORMATS.forEach((format, i) => {
    it(`a pledge onboards with a ${format} voucher; the LDevID from the token CA passes openssl verify`, async () => {
      const p = pledgeFiles(i + 1);
      const out = join(lab.dir, `ldevid-${format}`);
      const r = await runBrski(['pledge', '--registrar', registrarUrl, '--cert', p.cert, '--key', p.key, '--trust', lab.f('manufacturer-ca.pem'),
        '--trust', lab.f('masa-signer.pem'), '--format', format, '--retry-cap', '1', '--max-wait', '60', '--out', out, '--json']);
      expect(r.json, r.stdout + r.stderr).toMatchObject({ ok: true, seState: 'enrolled' });
      const v = openssl(out, 'verify', '-CAfile', lab.f('domain-ca.pem'), 'ldevid.pem');
      expect(v.code, v.out + v.err).toBe(0);
      // the LDevID was signed by the token key: the domain CA certificate carries that key (pki-init checked), openssl checked the signature
      expect(openssl(out, 'verify', '-CAfile', lab.f('manufacturer-ca.pem'), 'ldevid.pem').code).not.toBe(0);
    }, 120_000);

    it(`the ${format} voucher signed by the token key verifies with brski voucher verify`, async () => {
      const p = pledgeFiles(i + 4);
      const se = secureElementFromFiles(p.cert, p.key);
      const link = new RegistrarLink({ origin: registrarUrl, secureContext: se.tlsContext('idevid'), retry: { ...DEFAULT_RETRY, capSeconds: 1, maxTotalSeconds: 30 } });
      let voucher: Buffer;
      try {
        const chain = await link.connect();
        const serial = `PSIM-HSM-${String(i + 4).padStart(6, '0')}`;
        const pvr = await buildPvr({ format, serial, registrarCert: chain[0]! }, se.signer(se.active('idevid')!.handle));
        const res = await link.exchange({ method: 'POST', path: '/.well-known/brski/requestvoucher', body: pvr.bytes,
          headers: { 'content-type': VOUCHER_MEDIA_TYPE[format], accept: VOUCHER_MEDIA_TYPE[format] } });
        expect(res.status, res.body.toString('utf8')).toBe(200);
        voucher = res.body;
      } finally { link.close(); }
      const file = join(lab.dir, `voucher.${format}`);
      writeFileSync(file, voucher);
      // The registrar strips a COSE voucher's unprotected x5bag (cBRSKI): the pledge holds the MASA signer certificate.
      const signerCert = format === 'cose' ? ['--signer-cert', lab.f('masa-signer.pem')] : [];
      const r = brskiSync('voucher', 'verify', '--in', file, '--trust', lab.f('manufacturer-ca.pem'), ...signerCert, '--json');
      expect(r.code, r.err).toBe(0);
      const report = JSON.parse(r.out) as { valid: boolean; format: string; role: string; signer: string };
      expect(report).toMatchObject({ valid: true, format, role: 'voucher' });
      expect(report.signer).toMatch(/MASA Voucher Signer \(HSM\)/);
      // negative control: the token-signed voucher does not verify against an unrelated anchor
      expect(brskiSync('voucher', 'verify', '--in', file, '--trust', lab.f('domain-ca.pem'), ...signerCert).code).toBe(1);
    }, 120_000);
  });

  it('factory issuance signs IDevIDs with the token IDevID CA (openssl verify) and the new device onboards (pledge-sim Pledge, cose)', async () => {
    const st = station();
    try {
      const se = await st.manufacture('PSIM-FAB-000001');
      const chain = se.active('idevid')!.chain;
      writeFileSync(join(lab.dir, 'fab-idevid.pem'), chain[0]!.toString());
      const v = openssl(lab.pki, 'verify', '-CAfile', 'manufacturer-ca.pem', '-untrusted', 'idevid-ca.pem', join(lab.dir, 'fab-idevid.pem'));
      expect(v.code, v.out + v.err).toBe(0);
      expect(chain[0]!.verify(pem('idevid-ca.pem')[0]!.publicKey)).toBe(true);
      const pledge = new Pledge({ se, registrars: [registrarUrl], format: 'cose', trust: [...pem('manufacturer-ca.pem'), ...pem('masa-signer.pem')],
        retry: { capSeconds: 1, maxTotalSeconds: 60 } });
      const r = await pledge.onboard();
      expect(r.serial).toBe('PSIM-FAB-000001');
      expect(r.ldevid.verify(pem('domain-ca.pem')[0]!.publicKey)).toBe(true);
    } finally { st.close(); }
  }, 120_000);

  it('a revocation re-signs the CRL with the token domain CA; openssl crl -verify accepts it and lists the serial', async () => {
    const ldevid = parseCertificatesPem(readFileSync(join(lab.dir, 'ldevid-jws/ldevid.pem'), 'utf8'))[0]!;
    const rev = await admin('POST', `/admin/certificates/${ldevid.serialNumber}/revoke`, { reason: 'keyCompromise' });
    expect(rev.status, rev.text).toBe(200);
    const res = await crl();
    expect(res.status).toBe(200);
    writeFileSync(join(lab.dir, 'domain.crl'), res.body);
    const v = openssl(lab.pki, 'crl', '-inform', 'DER', '-in', join(lab.dir, 'domain.crl'), '-CAfile', 'domain-ca.pem', '-verify', '-noout', '-text');
    expect(v.code, v.err).toBe(0);
    expect(v.err + v.out).toMatch(/verify OK/);
    expect(v.out.replace(/\s/g, '')).toContain(`SerialNumber:${ldevid.serialNumber}`);
    // negative control: the CRL does not verify under another CA
    expect(openssl(lab.pki, 'crl', '-inform', 'DER', '-in', join(lab.dir, 'domain.crl'), '-CAfile', 'manufacturer-ca.pem', '-verify', '-noout').code).not.toBe(0);
  }, 60_000);

  describe('fail closed at start', () => {
    const startWith = (kind: 'masa' | 'registrar', from: string, patch: (d: Record<string, any>) => void) => {
      const cfg = patchYaml(lab, from, `${kind}-bad.yaml`, (d) => {
        d['listen'] = { host: '127.0.0.1', port: 0 };
        d['admin'] = { ...d['admin'], port: 0 };
        d['log'] = { level: 'silent' };
        patch(d);
      });
      return runBrski([kind, '--config', cfg], 60_000);
    };

    it('wrong PIN: the MASA refuses to start, names the signer key and never prints the PIN', async () => {
      const wrong = join(lab.dir, 'wrong.pin');
      writeFileSync(wrong, '999999\n', { mode: 0o600 });
      const r = await startWith('masa', 'masa.yaml', (d) => { d['signer'] = { ...d['signer'], pinFile: wrong }; });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^brski masa: signer: .*wrong PIN/m);
      expect(r.stderr + r.stdout).not.toContain('999999');
      expect(r.stdout).not.toMatch(/MASA listening/);
    }, 60_000);

    it('PIN env var unset: the MASA refuses to start (no fallback to a key file)', async () => {
      const r = await startWith('masa', 'masa.yaml', (d) => {
        const { pinFile: _p, ...rest } = d['signer'];
        d['signer'] = { ...rest, pinEnv: 'BRSKI_TEST_PIN_NOT_SET' };
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/signer: .*BRSKI_TEST_PIN_NOT_SET/);
    }, 60_000);

    it('unknown token: the MASA refuses to start naming idevid.ca', async () => {
      const r = await startWith('masa', 'masa.yaml', (d) => {
        d['idevid']['ca'] = { ...d['idevid']['ca'], pkcs11Uri: String(d['idevid']['ca'].pkcs11Uri).replace(/token=services;serial=[0-9a-f]+/, 'token=absent') };
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^brski masa: idevid\.ca: no initialised token matches/m);
    }, 60_000);

    it('unknown key label: the registrar refuses to start naming ca', async () => {
      const r = await startWith('registrar', 'registrar.yaml', (d) => {
        d['ca'] = { ...d['ca'], pkcs11Uri: String(d['ca'].pkcs11Uri).replace(/object=[^;]+;type=private(;id=[^;?]+)?/, 'object=no-such-key;type=private') };
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^brski registrar: ca: .*no-such-key/m);
    }, 60_000);

    it('a certificate that does not carry the token key is refused at start', async () => {
      const r = await startWith('registrar', 'registrar.yaml', (d) => { d['ca'] = { ...d['ca'], certFile: 'manufacturer-ca.pem' }; });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^brski registrar: ca: certificate '[^']*Manufacturer Root CA[^']*' does not carry the token's public key/m);
    }, 60_000);
  });

  // Last: removes the token under the running services.
  it('token removed while running: factory issuance, revocation and the CRL answer 503; the services stay up', async () => {
    for (const t of readdirSync(lab.tokens)) rmSync(join(lab.tokens, t), { recursive: true, force: true });

    const st = station();
    try {
      await expect(st.manufacture('PSIM-FAB-000002')).rejects.toMatchObject({ detail: { status: 503 } });
    } finally { st.close(); }

    const ldevid = parseCertificatesPem(readFileSync(join(lab.dir, 'ldevid-cms/ldevid.pem'), 'utf8'))[0]!;
    const rev = await admin('POST', `/admin/certificates/${ldevid.serialNumber}/revoke`, { reason: 'keyCompromise' });
    expect(rev.status, rev.text).toBe(503);
    expect(rev.text).toMatch(/hsm-unavailable/);
    const c = await crl();
    expect(c.status).toBe(503);
    // still 503 on a retry (no software key takes over), and the processes did not die
    expect((await crl()).status).toBe(503);
    expect((await admin('GET', '/admin/certificates')).status).toBe(200);
  }, 60_000);
});
