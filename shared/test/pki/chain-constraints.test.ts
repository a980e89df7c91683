/**
 * RFC 5280 §6.1.4 checks in chain.ts: pathLenConstraint, name constraints, unprocessed critical
 * extensions. Certificates are made with the openssl CLI, and every verdict is compared with
 * `openssl verify` on the same files: an independent validator must agree with ours.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChainError } from '../../src/errors.ts';
import { verifyChain } from '../../src/pki/chain.ts';

const dir = mkdtempSync(join(tmpdir(), 'chain-nc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);
let n = 0;

/** A certificate named `name`, self-signed when `issuer` is undefined; `ext` lines go into an extfile section. */
function make(name: string, subject: string, ext: string[], issuer?: string): X509Certificate {
  const cfg = at(`${name}.ext`);
  writeFileSync(cfg, `[x]\n${ext.join('\n')}\n`);
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at(`${name}.key`)]);
  execFileSync('openssl', ['req', '-new', '-key', at(`${name}.key`), '-subj', subject, '-out', at(`${name}.csr`)]);
  const signing = issuer ? ['-CA', at(`${issuer}.pem`), '-CAkey', at(`${issuer}.key`), '-set_serial', String(++n)] : ['-signkey', at(`${name}.key`)];
  execFileSync('openssl', ['x509', '-req', '-in', at(`${name}.csr`), ...signing, '-days', '30', '-sha256', '-extfile', cfg, '-extensions', 'x', '-out', at(`${name}.pem`)], { stdio: 'pipe' });
  return new X509Certificate(readFileSync(at(`${name}.pem`)));
}

const CA = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const LEAF = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'authorityKeyIdentifier=keyid'];

/** Our verdict and openssl's on leaf ← intermediates ← root. */
function verdicts(root: string, inters: string[], leaf: string): { ours: string; openssl: string } {
  let ours = 'ok';
  const certs = (names: string[]) => names.map((x) => new X509Certificate(readFileSync(at(`${x}.pem`))));
  try { verifyChain(certs([leaf])[0]!, certs(inters), certs([root])); } catch (e) {
    expect(e).toBeInstanceOf(ChainError);
    ours = `refused: ${(e as Error).message}`;
  }
  if (inters.length) writeFileSync(at('untrusted.pem'), inters.map((x) => readFileSync(at(`${x}.pem`), 'utf8')).join(''));
  const r = spawnSync('openssl', ['verify', '-CAfile', at(`${root}.pem`), ...(inters.length ? ['-untrusted', at('untrusted.pem')] : []), at(`${leaf}.pem`)], { encoding: 'utf8' });
  return { ours, openssl: r.status === 0 ? 'ok' : `refused: ${(r.stdout + r.stderr).trim().split('\n').find((l) => /error/.test(l)) ?? r.stderr}` };
}

function expectBoth(v: { ours: string; openssl: string }, ok: boolean, reason?: RegExp): void {
  expect(v.openssl.startsWith(ok ? 'ok' : 'refused'), `openssl: ${v.openssl}`).toBe(true);
  expect(v.ours.startsWith(ok ? 'ok' : 'refused'), `ours: ${v.ours}`).toBe(true);
  if (reason) expect(v.ours).toMatch(reason);
}

describe('chain: pathLenConstraint', () => {
  make('root', '/O=Acme/CN=Root CA', CA);
  make('root0', '/O=Acme/CN=Root CA pathlen 0', [...CA.slice(1), 'basicConstraints=critical,CA:TRUE,pathlen:0']);
  make('int', '/O=Acme/CN=Issuing CA', [...CA, 'authorityKeyIdentifier=keyid'], 'root');
  make('int-under-root0', '/O=Acme/CN=Issuing CA 2', [...CA, 'authorityKeyIdentifier=keyid'], 'root0');
  make('int0', '/O=Acme/CN=Issuing CA pathlen 0', ['basicConstraints=critical,CA:TRUE,pathlen:0', ...CA.slice(1), 'authorityKeyIdentifier=keyid'], 'root');
  make('sub', '/O=Acme/CN=Sub CA', [...CA, 'authorityKeyIdentifier=keyid'], 'int0');
  make('leaf-int', '/O=Acme/CN=Leaf One', LEAF, 'int');
  make('leaf-int2', '/O=Acme/CN=Leaf Two', LEAF, 'int-under-root0');
  make('leaf-sub', '/O=Acme/CN=Leaf Three', LEAF, 'sub');

  it('a path within every pathLen is taken', () => expectBoth(verdicts('root', ['int'], 'leaf-int'), true));
  it('an anchor with pathlen 0 cannot have an intermediate below it', () => expectBoth(verdicts('root0', ['int-under-root0'], 'leaf-int2'), false, /allows 0 intermediate/));
  it('an intermediate with pathlen 0 cannot have a sub-CA below it', () => expectBoth(verdicts('root', ['int0', 'sub'], 'leaf-sub'), false, /allows 0 intermediate/));
});

describe('chain: name constraints', () => {
  make('nc', '/O=Acme/CN=Constrained CA', [...CA, 'authorityKeyIdentifier=keyid',
    'nameConstraints=critical,permitted;dirName:dn_ok,permitted;DNS:example.com,permitted;IP:10.0.0.0/255.0.0.0,permitted;email:.acme.test,excluded;DNS:bad.example.com',
    '[dn_ok]', 'O=Acme'], 'root');
  const leaf = (name: string, subject: string, san?: string) => make(name, subject, [...LEAF, ...(san ? [`subjectAltName=${san}`] : [])], 'nc');
  leaf('nc-ok', '/O=Acme/CN=Registrar One', 'DNS:registrar.example.com,IP:10.1.2.3');
  leaf('nc-ok-apex', '/O=Acme/CN=Registrar Two', 'DNS:example.com');
  leaf('nc-bad-dns', '/O=Acme/CN=Registrar Three', 'DNS:registrar.evil.test');
  leaf('nc-excluded', '/O=Acme/CN=Registrar Four', 'DNS:x.bad.example.com');
  leaf('nc-bad-dn', '/O=Other/CN=Registrar Five', 'DNS:registrar.example.com');
  leaf('nc-bad-ip', '/O=Acme/CN=Registrar Six', 'IP:192.168.1.1');
  leaf('nc-lookalike', '/O=Acme/CN=Registrar Seven', 'DNS:notexample.com');
  leaf('nc-email-ok', '/O=Acme/CN=Pledge One/emailAddress=ops@site.acme.test');
  leaf('nc-email-bad', '/O=Acme/CN=Pledge Two/emailAddress=ops@elsewhere.test');

  it('names inside the permitted subtrees pass', () => {
    expectBoth(verdicts('root', ['nc'], 'nc-ok'), true);
    expectBoth(verdicts('root', ['nc'], 'nc-ok-apex'), true);
    expectBoth(verdicts('root', ['nc'], 'nc-email-ok'), true);
  });
  it('a dNSName outside the permitted subtrees is refused', () => expectBoth(verdicts('root', ['nc'], 'nc-bad-dns'), false, /dns name "registrar.evil.test" is outside/));
  it('a label-boundary lookalike (notexample.com) is refused', () => expectBoth(verdicts('root', ['nc'], 'nc-lookalike'), false, /outside the permitted/));
  it('a dNSName in an excluded subtree is refused', () => expectBoth(verdicts('root', ['nc'], 'nc-excluded'), false, /excluded subtree/));
  it('a subject outside the permitted directory subtree is refused', () => expectBoth(verdicts('root', ['nc'], 'nc-bad-dn'), false, /directory name .* is outside/));
  it('an iPAddress outside the permitted range is refused', () => expectBoth(verdicts('root', ['nc'], 'nc-bad-ip'), false, /IP address c0a80101 is outside/));
  it('without a SAN, emailAddress in the subject is held to rfc822Name constraints', () => expectBoth(verdicts('root', ['nc'], 'nc-email-bad'), false, /email name "ops@elsewhere.test"/));
});

describe('chain: critical extensions', () => {
  make('leaf-crit', '/O=Acme/CN=Leaf Critical', [...LEAF, '1.3.6.1.4.1.55555.1=critical,ASN1:NULL'], 'int');
  make('leaf-noncrit', '/O=Acme/CN=Leaf Noncritical', [...LEAF, '1.3.6.1.4.1.55555.1=ASN1:NULL'], 'int');
  make('int-polc', '/O=Acme/CN=Policy CA', [...CA, 'authorityKeyIdentifier=keyid', 'certificatePolicies=critical,1.3.6.1.4.1.55555.2', 'policyConstraints=critical,requireExplicitPolicy:0'], 'root');
  make('leaf-polc', '/O=Acme/CN=Leaf Policy', [...LEAF, 'certificatePolicies=1.3.6.1.4.1.55555.2'], 'int-polc');

  it('an unknown critical extension in the leaf makes it unusable; the same extension non-critical does not', () => {
    expectBoth(verdicts('root', ['int'], 'leaf-crit'), false, /unsupported critical extension 1\.3\.6\.1\.4\.1\.55555\.1/);
    expectBoth(verdicts('root', ['int'], 'leaf-noncrit'), true);
  });
  it('policyConstraints (not processed here) in an intermediate makes the path unusable', () => {
    const v = verdicts('root', ['int-polc'], 'leaf-polc');
    expect(v.ours).toMatch(/unsupported critical extension 2\.5\.29\.36/);
    // openssl processes policies and accepts this path: we refuse what we cannot check (fail closed).
    expect(v.openssl).toBe('ok');
  });
});
