/**
 * The masa.yaml / registrar.yaml documents `brski pki init` writes. Paths are relative to the
 * YAML file (the shared loader resolves `…File(s)` keys against the file's directory), secrets are
 * referenced with `<name>_file`. The layout is specified in docs/design/config.md; registrar.yaml
 * follows registrar/src/config.ts.
 */

export function masaConfigDocument(o: { masaPort: number }): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: o.masaPort },
    tls: { certFile: 'masa-tls.pem', keyFile: 'masa-tls.key', chainFiles: ['manufacturer-ca.pem'] },
    signer: { certFile: 'masa-signer.pem', keyFile: 'masa-signer.key', chainFiles: [] },
    idevid: { anchorFiles: ['idevid-ca.pem'] },
    registrars: { anchorFiles: ['domain-ca.pem'], requireKnown: false },
    voucher: {
      formats: ['cms', 'jws', 'cose'],
      includeIdevidIssuer: true,
      noncelessLifetimeSeconds: 14 * 86_400,
      nonceTtlSeconds: 86_400,
    },
    ownership: { defaultPolicy: 'first-use', productLines: {} },
    factory: { stationAnchorFiles: ['manufacturer-ca.pem'], seedFile: 'devices.json', productLine: 'psim' },
    admin: { host: '127.0.0.1', port: o.masaPort + 1, token_file: 'masa-admin.token' },
    store: { type: 'memory' },
    log: { level: 'info' },
  };
}

export function registrarConfigDocument(o: { registrarPort: number }): Record<string, unknown> {
  return {
    domain: 'example-domain',
    listen: { host: '127.0.0.1', port: o.registrarPort },
    tls: { certFile: 'registrar.pem', keyFile: 'registrar.key', chainFiles: ['domain-ca.pem'] },
    ca: { certFile: 'domain-ca.pem', keyFile: 'domain-ca.key' },
    manufacturers: [{
      name: 'PSIM Manufacturing',
      idevidAnchorFiles: ['idevid-ca.pem'],
      masaTlsAnchorFiles: ['manufacturer-ca.pem'],
      voucherAnchorFiles: ['masa-signer.pem'], // used only for vouchers (digest §8.6), not the root above the IDevID CA
      ignoreIdevidExpiry: false,
    }],
    policy: { mode: 'accept', allowlist: [] },
    admin: { host: '127.0.0.1', port: o.registrarPort + 1, token_file: 'registrar-admin.token' },
    store: { type: 'memory' },
    log: { level: 'info' },
  };
}
