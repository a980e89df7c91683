/**
 * Test PKI made with the openssl CLI (independent of our own pki/ code, so these tests do not
 * depend on it): root CA → intermediate CA → client leaf, a server certificate for 127.0.0.1,
 * and a self-signed "rogue" client. EC P-256 throughout.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../../../test/helpers/tmp.ts';

export interface TestPki {
  dir: string;
  rootCert: string;
  intermediateCert: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  /** client leaf followed by the intermediate */
  clientChain: string;
  rogueKey: string;
  rogueCert: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeTestPki(): TestPki {
  const tmp = makeTempDir('brski-pki-');
  const d = tmp.path;
  const key = (name: string) => openssl(d, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  const ext = (name: string, text: string) => writeFileSync(join(d, `${name}.ext`), text);

  key('root');
  openssl(d, ['req', '-x509', '-new', '-key', 'root.key', '-subj', '/CN=Test Root CA', '-days', '3650', '-out', 'root.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);

  const issue = (name: string, subj: string, issuer: string, extText: string) => {
    key(name);
    openssl(d, ['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
    ext(name, extText);
    openssl(d, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial',
      '-days', '365', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  };
  issue('intermediate', '/CN=Test Intermediate CA', 'root', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  issue('server', '/CN=localhost', 'root', 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  issue('client', '/CN=pledge-0001/serialNumber=0001', 'intermediate', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');

  key('rogue');
  openssl(d, ['req', '-x509', '-new', '-key', 'rogue.key', '-subj', '/CN=rogue', '-days', '30', '-out', 'rogue.pem']);

  const r = (f: string) => readFileSync(join(d, f), 'utf8');
  return {
    dir: d,
    rootCert: r('root.pem'),
    intermediateCert: r('intermediate.pem'),
    serverKey: r('server.key'),
    serverCert: r('server.pem'),
    clientKey: r('client.key'),
    clientCert: r('client.pem'),
    clientChain: r('client.pem') + r('intermediate.pem'),
    rogueKey: r('rogue.key'),
    rogueCert: r('rogue.pem'),
    cleanup: () => tmp.cleanup(),
  };
}
