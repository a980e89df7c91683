/**
 * Key sections in the service configs (no token needed): MASA `signer` / `idevid.ca` and
 * registrar `ca` take a PEM key or a PKCS#11 key, strictly one of them, with errors naming the
 * key; a PKCS#11 key is opened by start() (never at construction) and a failure to open it stops
 * the start — nothing listens, no software key is used instead, the PIN is never in the message.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildConfig } from '@brski/shared/config/load';
import { HsmError } from '@brski/shared/crypto/pkcs11/errors';
import { initDemoPki, type PkiManifest } from '../../cli/lib/pki-init.ts';
import { buildMasaConfig, factoryEnabled, idevidCaConfig } from '../../masa/src/config.ts';
import { createMasa } from '../../masa/src/server.ts';
import { PendingSigner } from '../../masa/src/signers.ts';
import { registrarConfigSchema } from '../../registrar/src/config.ts';
import { createRegistrar } from '../../registrar/src/server.ts';
import { makeTempDir, type TempDir } from '../helpers/tmp.ts';

const URI = 'pkcs11:token=lab;object=brski-masa-voucher;type=private';
const NO_MODULE = '/nonexistent/libpkcs11-brski-test.so';
const INLINE_PIN = '8642097531';

let tmp: TempDir;
let m: PkiManifest;
const yaml = (file: string) => parse(readFileSync(file, 'utf8')) as Record<string, any>;
const masaWith = (patch: (d: Record<string, any>) => void) => {
  const d = yaml(m.masaConfig);
  d['listen'] = { host: '127.0.0.1', port: 0 };
  d['admin'] = { ...d['admin'], port: 0 };
  d['log'] = { level: 'silent' };
  patch(d);
  return buildMasaConfig(d, tmp.path);
};
const registrarWith = (patch: (d: Record<string, any>) => void) => {
  const d = yaml(m.registrarConfig);
  d['listen'] = { host: '127.0.0.1', port: 0 };
  d['admin'] = { ...d['admin'], port: 0 };
  d['log'] = { level: 'silent' };
  patch(d);
  return buildConfig(d, registrarConfigSchema, { baseDir: tmp.path });
};

beforeAll(async () => {
  tmp = makeTempDir('brski-hsm-config-');
  m = await initDemoPki({ out: tmp.path, devices: 0, force: true });
}, 60_000);
afterAll(() => tmp?.cleanup());

describe('MASA key sections', () => {
  it('accepts the PEM form and the PKCS#11 form of signer', () => {
    expect(masaWith(() => {}).signer.keyFile).toBe(m.masaSigner.key);
    const c = masaWith((d) => { d['signer'] = { certFile: 'masa-signer.pem', pkcs11Uri: URI, module: NO_MODULE, pinFile: 'pin.txt' }; });
    expect(c.signer).toMatchObject({ pkcs11Uri: URI, module: NO_MODULE, pinFile: join(tmp.path, 'pin.txt'), chainFiles: [] });
  });

  it.each([
    ['both keyFile and pkcs11Uri', { keyFile: 'masa-signer.key', pkcs11Uri: URI }, /signer: give exactly one of keyFile \(PEM\) or pkcs11Uri/],
    ['neither', {}, /signer: give exactly one of keyFile/],
    ['PKCS#11 options with a PEM key', { keyFile: 'masa-signer.key', module: NO_MODULE }, /signer\.module: only with pkcs11Uri/],
    ['two PIN sources', { pkcs11Uri: URI, pinFile: 'a', pinEnv: 'B' }, /signer: give at most one of pin, pinFile, pinEnv/],
    ['not a pkcs11: URI', { pkcs11Uri: 'file:/etc/key.pem' }, /signer\.pkcs11Uri: expected an RFC 7512 pkcs11: URI/],
    ['an unknown key', { pkcs11Uri: URI, slot: 1 }, /signer\.slot: unknown key/],
    ['a pkcs11: URI in keyFile', { keyFile: URI }, /signer\.keyFile: keyFile is a PEM file; put a pkcs11: URI in pkcs11Uri/],
  ])('refuses signer with %s, naming the key', (_name, section, message) => {
    expect(() => masaWith((d) => { d['signer'] = { certFile: 'masa-signer.pem', ...section }; })).toThrow(message);
  });

  it('idevid.ca (either form) enables the factory; it cannot be combined with caCertFile/caKeyFile', () => {
    const pem = masaWith((d) => { d['idevid'] = { ...d['idevid'], ca: { certFile: 'idevid-ca.pem', keyFile: 'idevid-ca.key' } }; });
    expect(factoryEnabled(pem)).toBe(true);
    const short = masaWith((d) => { d['idevid'] = { ...d['idevid'], caCertFile: 'idevid-ca.pem', caKeyFile: 'idevid-ca.key' }; });
    expect(idevidCaConfig(short)).toEqual({ certFile: m.idevidCa.cert, keyFile: m.idevidCa.key, chainFiles: [] });
    expect(factoryEnabled(masaWith(() => {}))).toBe(false);
    expect(() => masaWith((d) => {
      d['idevid'] = { ...d['idevid'], ca: { certFile: 'idevid-ca.pem', pkcs11Uri: URI }, caCertFile: 'idevid-ca.pem', caKeyFile: 'idevid-ca.key' };
    })).toThrow(/idevid\.ca: give either idevid\.ca or idevid\.caCertFile \+ caKeyFile/);
  });

  it('a PEM certificate that does not carry the PEM key is refused at construction, naming the section', () => {
    const c = masaWith((d) => { d['signer'] = { ...d['signer'], certFile: 'masa-tls.pem' }; });
    expect(() => createMasa(c)).toThrow(/^signer: .*masa-tls\.pem does not carry the key/);
  });

  it('a PKCS#11 signer is opened by start(), not at construction; failing to open it stops the start (nothing listens, PIN not shown)', async () => {
    const c = masaWith((d) => {
      d['signer'] = { certFile: 'masa-signer.pem', pkcs11Uri: URI, module: NO_MODULE, pin: INLINE_PIN };
      d['idevid'] = { ...d['idevid'], ca: { certFile: 'idevid-ca.pem', keyFile: 'idevid-ca.key' } };
    });
    const masa = createMasa(c); // no token access here
    const err = await masa.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect((err as HsmError).failure).toBe('module-load');
    expect((err as HsmError).message).toMatch(/^signer: /);
    expect(`${(err as Error).message} ${JSON.stringify((err as HsmError).detail ?? {})}`).not.toContain(INLINE_PIN);
    expect(masa.port).toBe(0);
    expect(masa.server.listening).toBe(false);
    await masa.stop();
  });

  it('an unopened PKCS#11 signer refuses every use and shows no PIN', async () => {
    const section = { certFile: m.masaSigner.cert, chainFiles: [], pkcs11Uri: URI, module: NO_MODULE, pin: INLINE_PIN };
    const p = new PendingSigner('signer', section);
    expect(() => p.sign(Uint8Array.of(1))).toThrow(/signer: PKCS#11 key not opened/);
    expect(() => p.certificates).toThrow(/not opened/);
    expect(JSON.stringify(p)).not.toContain(INLINE_PIN);
  });
});

describe('registrar ca section', () => {
  it.each([
    ['both keyFile and pkcs11Uri', { keyFile: 'domain-ca.key', pkcs11Uri: URI }, /ca: give exactly one of keyFile/],
    ['PKCS#11 options with a PEM key', { keyFile: 'domain-ca.key', pinEnv: 'X' }, /ca\.pinEnv: only with pkcs11Uri/],
    ['two PIN sources', { pkcs11Uri: URI, pin: 'a', pinFile: 'b' }, /ca: give at most one of pin, pinFile, pinEnv/],
    ['a pkcs11: URI in keyFile', { keyFile: URI }, /ca\.keyFile: keyFile is a PEM file/],
  ])('refuses ca with %s, naming the key', (_name, section, message) => {
    expect(() => registrarWith((d) => { d['ca'] = { certFile: 'domain-ca.pem', ...section }; })).toThrow(message);
  });

  it('a PKCS#11 domain CA is opened by start(); failing to open it stops the start before anything listens', async () => {
    const c = registrarWith((d) => { d['ca'] = { certFile: 'domain-ca.pem', pkcs11Uri: URI, module: NO_MODULE, pinEnv: 'BRSKI_UNSET_PIN' }; });
    const reg = createRegistrar(c);
    const err = await reg.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect((err as HsmError).failure).toBe('module-load');
    expect((err as Error).message).toMatch(/^ca: /);
    expect(reg.port).toBe(0);
    await expect(reg.ca.crl()).rejects.toThrow(/ca: PKCS#11 key not opened/);
    await reg.stop();
  });
});
