/**
 * `brski hsm` end to end in child processes (as an operator runs it): token init, keygen,
 * pki-init; then the written configs are loaded through the shared loader and every artefact is
 * checked with openssl. The token directory is fresh and private to this test.
 */
import { spawnSync } from 'node:child_process';
import { verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfiguredSigner, signerConfigSchema } from '../../src/crypto/key-loader.ts';
import { finalizeAllModules } from '../../src/crypto/pkcs11/module.ts';
import { SOFTHSM_MODULE, createSoftHsm, softHsmMissingReason } from './softhsm.ts';

const skip = softHsmMissingReason();
const ROOT = resolve(import.meta.dirname, '../../..');
const PIN = '424242';

describe.skipIf(skip !== undefined)('brski hsm CLI (SoftHSM2)', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const brski = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/brski.ts'), 'hsm', ...args, '--module', SOFTHSM_MODULE!],
      { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const openssl = (...args: string[]) => spawnSync('openssl', args, { cwd: join(dir, 'pki'), encoding: 'utf8' });

  beforeAll(() => {
    finalizeAllModules();
    dir = mkdtempSync(join(tmpdir(), 'brski-hsm-cli-'));
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    writeFileSync(join(dir, 'user.pin'), `${PIN}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'so.pin'), '97531975\n', { mode: 0o600 });
    env = { ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') };
    // This process loads the same token directory after the CLI wrote it.
    process.env.SOFTHSM2_CONF = env.SOFTHSM2_CONF;
  });
  afterAll(() => { finalizeAllModules(); if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('init-token, keygen and pki-init produce HSM-signed certificates and configs the loader opens', async () => {
    const pin = ['--pin-file', join(dir, 'user.pin')];
    const init = brski('init-token', '--label', 'cli-lab', ...pin, '--so-pin-file', join(dir, 'so.pin'));
    expect(init.code, init.err).toBe(0);
    expect(init.out).toMatch(/token 'cli-lab' initialised/);

    const kg = brski('keygen', '--token', 'cli-lab', '--label', 'extra', '--curve', 'P-384', ...pin);
    expect(kg.code, kg.err).toBe(0);
    expect(kg.out.trim()).toMatch(/^pkcs11:token=cli-lab;serial=[0-9a-f]+;object=extra;type=private;id=(%[0-9A-F]{2}){16}$/);
    // same label again: refused, never a second key with the same label
    const again = brski('keygen', '--token', 'cli-lab', '--label', 'extra', ...pin);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already holds an object/);

    const wrongPin = join(dir, 'wrong.pin');
    writeFileSync(wrongPin, '000000\n');
    const bad = brski('keygen', '--token', 'cli-lab', '--label', 'x', '--pin-file', wrongPin);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/wrong PIN/);
    expect(bad.err).not.toContain('000000');

    const noPin = brski('pki-init', '--token', 'cli-lab', '--out', join(dir, 'pki'));
    expect(noPin.code).toBe(1);
    expect(noPin.err).toMatch(/--pin-file or --pin-env/);

    const pki = brski('pki-init', '--token', 'cli-lab', '--out', join(dir, 'pki'), '--devices', '2', ...pin);
    expect(pki.code, pki.err).toBe(0);

    const list = brski('list', '--token', 'cli-lab', '--json', ...pin);
    const keys = JSON.parse(list.out) as Array<{ label: string; sensitive: boolean; extractable: boolean; neverExtractable: boolean }>;
    expect(keys.map((k) => k.label).sort()).toEqual(['brski-domain-ca', 'brski-idevid-ca', 'brski-manufacturer-root', 'brski-masa-voucher', 'extra']);
    for (const k of keys) expect(k).toMatchObject({ sensitive: true, extractable: false, neverExtractable: true });

    // openssl: the chains the HSM keys signed
    for (const args of [
      ['verify', '-CAfile', 'manufacturer-ca.pem', '-untrusted', 'idevid-ca.pem', 'pledges/PSIM-HSM-000001.pem'],
      ['verify', '-CAfile', 'manufacturer-ca.pem', 'masa-signer.pem'],
      ['verify', '-CAfile', 'manufacturer-ca.pem', 'masa-tls.pem'],
      ['verify', '-CAfile', 'domain-ca.pem', 'registrar.pem'],
    ]) {
      const r = openssl(...args);
      expect(r.status, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    expect(openssl('verify', '-CAfile', 'domain-ca.pem', 'masa-signer.pem').status).not.toBe(0);

    // The configs reference the keys by URI + PIN file (never the PIN) and load through the shared loader.
    const masaYaml = readFileSync(join(dir, 'pki/masa.yaml'), 'utf8');
    expect(masaYaml).not.toContain(PIN);
    const hsmKeys = parse(readFileSync(join(dir, 'pki/hsm-keys.yaml'), 'utf8')) as { keys: Record<string, unknown> };
    for (const [name, section] of Object.entries({ masa: parse(masaYaml).signer, registrar: parse(readFileSync(join(dir, 'pki/registrar.yaml'), 'utf8')).ca, ...hsmKeys.keys })) {
      const cfg = signerConfigSchema.parse(section);
      expect('pkcs11Uri' in cfg, name).toBe(true);
      const abs = { ...cfg, certFile: join(dir, 'pki', cfg.certFile), chainFiles: (cfg.chainFiles ?? []).map((c) => join(dir, 'pki', c)) };
      const signer = await loadConfiguredSigner(abs);
      const sig = await signer.sign(Uint8Array.of(7));
      expect(verify(signer.algorithm === 'ES384' ? 'sha384' : 'sha256', Uint8Array.of(7), { key: signer.certificates[0]!.publicKey, dsaEncoding: 'ieee-p1363' }, sig), name).toBe(true);
    }
  });

  it('the SoftHSM fixture is independent of the CLI token directory', () => {
    const h = createSoftHsm();
    try { expect(h.module.tokens().filter((t) => t.label === 'cli-lab')).toHaveLength(0); } finally { h.cleanup(); }
  });
});
