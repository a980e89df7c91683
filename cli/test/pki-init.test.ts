import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../shared/src/config/load.ts';
import { hasEku, idevidIssuerOf, masaUrlOf, OID, serialNumberOf } from '../../shared/src/pki/index.ts';
import { register } from '../commands/pki.ts';
import { initDemoPki, type PkiManifest } from '../lib/pki-init.ts';
import { openssl } from '../../shared/test/pki/fixtures.ts';
import { registrarConfigSchema } from '../../registrar/src/config.ts';

const cert = (p: string) => new X509Certificate(readFileSync(p));
let m: PkiManifest;
beforeAll(async () => {
  m = await initDemoPki({ out: mkdtempSync(join(tmpdir(), 'pki-init-')), devices: 5, masaUrl: 'masa.example.test:9443' });
});

describe('initDemoPki', () => {
  it('writes every role with private keys at mode 0600', () => {
    const roles = [m.manufacturerCa, m.idevidCa, m.masaSigner, m.masaTls, m.domainCa, m.registrar, m.station, ...m.pledges];
    for (const r of roles) {
      expect(cert(r.cert)).toBeInstanceOf(X509Certificate);
      expect(statSync(r.key).mode & 0o777).toBe(0o600);
      expect(readFileSync(r.key, 'utf8')).toContain('BEGIN PRIVATE KEY');
    }
    expect(statSync(m.masaAdminToken).mode & 0o777).toBe(0o600);
    expect(readFileSync(m.masaAdminToken, 'utf8').length).toBeGreaterThanOrEqual(16);
    expect(m.pledges.map((p) => p.serial)).toEqual(['PSIM-000001', 'PSIM-000002', 'PSIM-000003', 'PSIM-000004', 'PSIM-000005']);
  });

  it('pledge IDevIDs chain to the manufacturer root and carry serial + MASA URL', () => {
    const p = m.pledges[2]!;
    const c = cert(p.cert);
    expect(serialNumberOf(c)).toBe('PSIM-000003');
    expect(masaUrlOf(c)).toBe('masa.example.test:9443');
    const out = openssl(() => ['verify', '-CAfile', m.manufacturerCa.cert, '-untrusted', m.idevidCa.cert, p.cert], {});
    expect(out).toContain(': OK');
    const devices = JSON.parse(readFileSync(m.devices, 'utf8')) as Array<{ serial: string; idevidIssuer: string }>;
    expect(devices[2]).toMatchObject({ serial: 'PSIM-000003', idevidIssuer: Buffer.from(idevidIssuerOf(c)).toString('hex') });
  });

  it('keys match their certificates', () => {
    for (const r of [m.registrar, m.masaSigner, m.pledges[0]!]) {
      const c = cert(r.cert);
      const mod = openssl(() => ['pkey', '-in', r.key, '-pubout'], {});
      expect(mod.replace(/\s/g, '')).toBe(c.publicKey.export({ type: 'spki', format: 'pem' }).toString().replace(/\s/g, ''));
    }
  });

  it('registrar, MASA TLS/signer and station certificates have the right profile and chain', () => {
    const reg = cert(m.registrar.cert);
    expect(hasEku(reg, OID.cmcRA) && hasEku(reg, OID.serverAuth) && hasEku(reg, OID.clientAuth)).toBe(true);
    expect(openssl(() => ['verify', '-CAfile', m.domainCa.cert, m.registrar.cert], {})).toContain(': OK');
    const tls = cert(m.masaTls.cert);
    expect(tls.checkHost('localhost')).toBe('localhost');
    expect(tls.checkHost('masa.example.test')).toBe('masa.example.test');
    expect(tls.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(openssl(() => ['verify', '-CAfile', m.manufacturerCa.cert, '-purpose', 'sslserver', m.masaTls.cert], {})).toContain(': OK');
    expect(openssl(() => ['verify', '-CAfile', m.manufacturerCa.cert, m.masaSigner.cert], {})).toContain(': OK');
    expect(openssl(() => ['verify', '-CAfile', m.manufacturerCa.cert, '-purpose', 'sslclient', m.station.cert], {})).toContain(': OK');
  });

  it('registrar.yaml loads with the registrar schema and points at existing files', () => {
    const cfg = loadConfig(m.registrarConfig, registrarConfigSchema);
    expect(cfg.tls.certFile).toBe(m.registrar.cert);
    expect(cfg.ca.keyFile).toBe(m.domainCa.key);
    expect(cfg.manufacturers[0]!.idevidAnchorFiles).toEqual([m.idevidCa.cert]);
    expect(cfg.admin.token).toBe(readFileSync(m.registrarAdminToken, 'utf8'));
  });

  it('masa.yaml references the generated files', () => {
    const text = readFileSync(m.masaConfig, 'utf8');
    for (const f of ['masa-tls.pem', 'masa-tls.key', 'masa-signer.pem', 'masa-signer.key', 'idevid-ca.pem', 'devices.json', 'masa-admin.token']) {
      expect(text).toContain(f);
    }
  });

  it('refuses to overwrite a non-empty directory without force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pki-init-'));
    writeFileSync(join(dir, 'x'), 'keep');
    await expect(initDemoPki({ out: dir, devices: 0 })).rejects.toThrow(/not empty/);
    await expect(initDemoPki({ out: dir, devices: 0, force: true })).resolves.toMatchObject({ pledges: [] });
  });

  it('rejects bad option values', async () => {
    await expect(initDemoPki({ out: mkdtempSync(join(tmpdir(), 'pki-init-')), devices: -1 })).rejects.toThrow(/devices/);
    await expect(initDemoPki({ out: mkdtempSync(join(tmpdir(), 'pki-init-')), masaPort: 70000 })).rejects.toThrow(/port/);
  });
});

describe('brski pki init (command)', () => {
  it('--json prints a manifest naming every role', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out.push(String(s)); return true; });
    try {
      const program = new Command('brski').exitOverride();
      register(program);
      const dir = mkdtempSync(join(tmpdir(), 'pki-cmd-'));
      await program.parseAsync(['pki', 'init', '--out', dir, '--devices', '3', '--curve', 'P-384', '--masa-port', '9555', '--json'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const manifest = JSON.parse(out.join('')) as PkiManifest;
    for (const role of ['manufacturerCa', 'idevidCa', 'masaSigner', 'masaTls', 'domainCa', 'registrar', 'station'] as const) {
      expect(manifest[role].cert).toMatch(/\.pem$/);
      expect(manifest[role].key).toMatch(/\.key$/);
    }
    expect(manifest.pledges).toHaveLength(3);
    expect(manifest.masaUrl).toBe('localhost:9555');
    expect(manifest.masaConfig).toMatch(/masa\.yaml$/);
    expect(manifest.registrarConfig).toMatch(/registrar\.yaml$/);
    expect(cert(manifest.pledges[0]!.cert).publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });

  it('rejects an invalid --devices value and an http MASA URL', async () => {
    const program = new Command('brski').exitOverride().configureOutput({ writeErr: () => {} });
    register(program);
    await expect(program.parseAsync(['pki', 'init', '--out', '/tmp/never', '--devices', 'many'], { from: 'user' })).rejects.toThrow(/integer/);
    await expect(program.parseAsync(['pki', 'init', '--out', '/tmp/never', '--masa-url', 'http://x/y'], { from: 'user' })).rejects.toThrow(/HTTPS/);
  });
});
