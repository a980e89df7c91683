import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig, redactConfig } from '../../src/config/load.ts';
import { makeTempDir, type TempDir } from '../../../test/helpers/tmp.ts';

const schema = z.object({
  listen: z.object({ host: z.string().default('0.0.0.0'), port: z.number().int().min(1).max(65535), keepAliveMs: z.number().optional() }).strict(),
  tls: z.object({ keyFile: z.string(), certFile: z.string(), caFiles: z.array(z.string()).default([]) }).strict(),
  hsm: z.object({ module: z.string(), pin: z.string().regex(/^\d{4,}$/), label: z.string().optional() }).strict().optional(),
  name: z.string().optional(),
  masaUrl: z.string().optional(),
}).strict();

let dir: TempDir;
beforeEach(() => { dir = makeTempDir('brski-config-'); });
afterEach(() => dir.cleanup());

function write(name: string, text: string): string {
  const p = join(dir.path, name);
  writeFileSync(p, text);
  return p;
}

const BASE = 'listen:\n  port: 8443\ntls:\n  keyFile: keys/server.key\n  certFile: /etc/brski/server.pem\n';

function errorOf(fn: () => unknown): ConfigError {
  try { fn(); } catch (e) { if (e instanceof ConfigError) return e; throw e; }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('parses YAML, applies defaults and resolves relative paths against the file directory', () => {
    const cfg = loadConfig(write('masa.yaml', BASE + '  caFiles: [ca/a.pem, /abs/b.pem]\nmasaUrl: https://masa.example\n'), schema, { env: {} });
    expect(cfg.listen).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(cfg.tls.keyFile).toBe(join(dir.path, 'keys/server.key'));
    expect(cfg.tls.certFile).toBe('/etc/brski/server.pem');
    expect(cfg.tls.caFiles).toEqual([join(dir.path, 'ca/a.pem'), '/abs/b.pem']);
    expect(cfg.masaUrl).toBe('https://masa.example'); // not a path key: untouched
  });

  it('names the exact bad key path', () => {
    const e = errorOf(() => loadConfig(write('c.yaml', BASE.replace('8443', '"eight"')), schema, { env: {} }));
    expect(e.code).toBe('malformed');
    expect(e.issues).toEqual([{ path: 'listen.port', message: 'expected number, received string' }]);
    expect(e.message).toContain('listen.port: expected number');
  });

  it('names unknown keys (typos) instead of ignoring them', () => {
    const e = errorOf(() => loadConfig(write('c.yaml', BASE + '  prot: 1\n'), schema, { env: {} }));
    expect(e.issues.map((i) => i.path)).toContain('tls.prot');
  });

  it('refuses duplicate YAML keys, a missing file and a non-mapping document', () => {
    expect(errorOf(() => loadConfig(write('d.yaml', 'name: a\nname: b\n'), schema, { env: {} })).message).toMatch(/YAML/);
    expect(errorOf(() => loadConfig(join(dir.path, 'nope.yaml'), schema, { env: {} })).message).toMatch(/ENOENT/);
    expect(errorOf(() => loadConfig(write('l.yaml', '- 1\n- 2\n'), schema, { env: {} })).message).toMatch(/mapping/);
  });

  it('env overrides nest on double underscores and parse JSON values', () => {
    const env = { BRSKI_MASA__LISTEN__PORT: '9443', BRSKI_MASA__LISTEN__KEEP_ALIVE_MS: '7000', BRSKI_MASA__TLS__CA_FILES: '["x.pem"]',
      BRSKI_MASA_UNRELATED: 'ignored', OTHER__LISTEN__PORT: '1' };
    const cfg = loadConfig(write('c.yaml', BASE), schema, { envPrefix: 'BRSKI_MASA', env });
    expect(cfg.listen.port).toBe(9443);
    expect(cfg.listen.keepAliveMs).toBe(7000);
    expect(cfg.tls.caFiles).toEqual([join(dir.path, 'x.pem')]);
  });

  it('a prefix ending in "_" makes the first segment a top-level key', () => {
    const nested = z.object({ masa: schema });
    const p = write('c.yaml', 'masa:\n' + BASE.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n'));
    const cfg = loadConfig(p, nested, { envPrefix: 'BRSKI_', env: { BRSKI_MASA__LISTEN__PORT: '9443' } });
    expect(cfg.masa.listen.port).toBe(9443);
    const e = errorOf(() => loadConfig(p, nested, { envPrefix: 'BRSKI_', env: { BRSKI_MASA__LISTEN__PORT: 'x' } }));
    expect(e.issues[0]).toEqual({ path: 'masa.listen.port', message: 'expected number, received string (set by BRSKI_MASA__LISTEN__PORT)' });
  });

  it('keeps numeric-looking env values as strings where the schema wants a string', () => {
    const cfg = loadConfig(write('c.yaml', BASE), schema, { envPrefix: 'APP', env: { APP__NAME: '0123', APP__MASA_URL: '42' } });
    expect(cfg.name).toBe('0123');
    expect(cfg.masaUrl).toBe('42');
  });

  it('refuses an env variable that names no key', () => {
    const e = errorOf(() => loadConfig(write('c.yaml', BASE), schema, { envPrefix: 'APP', env: { APP__LISTEN__PROT: '1' } }));
    expect(e.message).toContain('APP__LISTEN__PROT does not name a configuration key');
  });

  it('reads secrets from *_file keys (YAML or env) and never puts them in errors', () => {
    mkdirSync(join(dir.path, 'secrets'));
    writeFileSync(join(dir.path, 'secrets/pin'), '123456\n');
    const yaml = BASE + 'hsm:\n  module: /usr/lib/softhsm/libsofthsm2.so\n  pin_file: secrets/pin\n';
    expect(loadConfig(write('c.yaml', yaml), schema, { env: {} }).hsm?.pin).toBe('123456');

    const viaEnv = BASE + 'hsm:\n  module: m\n';
    expect(loadConfig(write('e.yaml', viaEnv), schema, { envPrefix: 'APP', env: { APP__HSM__PIN_FILE: join(dir.path, 'secrets/pin') } }).hsm?.pin)
      .toBe('123456');

    const both = errorOf(() => loadConfig(write('b.yaml', yaml + '  pin: "1111"\n'), schema, { env: {} }));
    expect(both.issues[0]?.path).toBe('hsm.pin_file');

    // A secret that fails validation: the error names the key, not the value.
    const bad = errorOf(() => loadConfig(write('v.yaml', viaEnv), schema, { envPrefix: 'APP', env: { APP__HSM__PIN: 'secret-value' } }));
    expect(bad.issues[0]?.path).toBe('hsm.pin');
    expect(bad.message).not.toContain('secret-value');
  });

  it('names a missing secret file', () => {
    const e = errorOf(() => loadConfig(write('c.yaml', BASE + 'hsm:\n  module: m\n  pin_file: nope\n'), schema, { env: {} }));
    expect(e.issues[0]).toMatchObject({ path: 'hsm.pin_file', message: expect.stringContaining('ENOENT') });
  });
});

describe('redactConfig', () => {
  it('hides secret-looking values at any depth', () => {
    expect(redactConfig({ hsm: { pin: '1234', module: 'm' }, redis: [{ sentinelPassword: 'p' }], adminToken: 't', keyFile: '/k' }))
      .toEqual({ hsm: { pin: '[redacted]', module: 'm' }, redis: [{ sentinelPassword: '[redacted]' }], adminToken: '[redacted]', keyFile: '/k' });
  });
});
