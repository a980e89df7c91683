/**
 * `brski hsm …`: keys in a PKCS#11 token (SoftHSM2 in the lab, a real HSM in production).
 *   init-token  initialise a token (label, SO PIN, user PIN)
 *   keygen      generate an EC key pair INSIDE the token (sensitive, never extractable) and print its URI
 *   list        list the token's private keys with their protection attributes
 *   pki-init    generate the CA / voucher-signing keys in the token, issue the certificates with them
 *               and write masa.yaml / registrar.yaml that reference the keys by pkcs11: URI
 * PINs come from a file or an environment variable only (never the command line: it is visible in ps).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { generateEcKeyPair, initToken, listPrivateKeys } from '../../shared/src/crypto/pkcs11/admin.ts';
type Curve = 'P-256' | 'P-384';
import { HsmError } from '../../shared/src/crypto/pkcs11/errors.ts';
import { finalizeAllModules, getModule, resolveModulePath, type Pkcs11Module } from '../../shared/src/crypto/pkcs11/module.ts';
import { resolvePin } from '../../shared/src/crypto/pkcs11/pin.ts';
import { publicKeyToPem } from '../../shared/src/pki/keys.ts';
import { hsmPkiInit } from './hsm-pki.ts';

export const DEFAULT_MODULE = process.env.BRSKI_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

interface PinOpts { pinFile?: string; pinEnv?: string }

function pinFrom(o: PinOpts, what = 'user PIN'): string {
  const pin = resolvePin({ ...(o.pinFile ? { pinFile: o.pinFile } : {}), ...(o.pinEnv ? { pinEnv: o.pinEnv } : {}) });
  if (pin === undefined) throw new HsmError('pin-missing', `${what}: give --pin-file or --pin-env`);
  return pin;
}

function soPinFrom(o: { soPinFile?: string; soPinEnv?: string }): string {
  return pinFrom({ ...(o.soPinFile ? { pinFile: o.soPinFile } : {}), ...(o.soPinEnv ? { pinEnv: o.soPinEnv } : {}) }, 'SO PIN');
}

const curveArg = (v: string): 'P-256' | 'P-384' => {
  if (v !== 'P-256' && v !== 'P-384') throw new InvalidArgumentError('curve must be P-256 or P-384');
  return v;
};
const hexArg = (v: string): Uint8Array => {
  if (!/^([0-9a-fA-F]{2}){1,64}$/.test(v)) throw new InvalidArgumentError('id must be hex bytes, e.g. 01a2');
  return Uint8Array.from(Buffer.from(v, 'hex'));
};

function withModule(o: { module: string }, fn: (m: Pkcs11Module) => Promise<void> | void): Promise<void> {
  const mod = getModule(resolveModulePath(o.module));
  return Promise.resolve(fn(mod)).finally(() => finalizeAllModules());
}

function common(cmd: Command, pins = true): Command {
  cmd.addOption(new Option('--module <path>', 'PKCS#11 module (env BRSKI_PKCS11_MODULE)').default(DEFAULT_MODULE));
  if (pins) {
    cmd.option('--pin-file <path>', 'file holding the user PIN')
      .option('--pin-env <name>', 'environment variable holding the user PIN');
  }
  return cmd;
}

/** Errors are printed as one line (HsmError messages never contain PINs) and exit non-zero. */
async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const failure = e instanceof HsmError ? ` [${e.failure}${e.ckr ? ` ${e.ckr}` : ''}]` : '';
    process.stderr.write(`brski hsm: ${(e as Error).message}${failure}\n`);
    process.exitCode = 1;
  }
}

export function register(program: Command): void {
  const hsm = program.command('hsm').description('keys in a PKCS#11 token: init token, generate keys, provision the PKI with HSM keys');

  common(hsm.command('init-token').description('initialise a free token slot with a label, SO PIN and user PIN'), true)
    .requiredOption('--label <label>', 'token label (1..32 bytes)')
    .option('--so-pin-file <path>', 'file holding the security officer PIN')
    .option('--so-pin-env <name>', 'environment variable holding the SO PIN')
    .action((o: { module: string; label: string; soPinFile?: string; soPinEnv?: string } & PinOpts) => run(() => withModule(o, (m) => {
      const t = initToken(m, { label: o.label, soPin: soPinFrom(o), userPin: pinFrom(o) });
      process.stdout.write(`token '${t.label}' initialised (serial ${t.serial})\nURI: pkcs11:token=${encodeURIComponent(t.label)};serial=${t.serial}\n`);
    })));

  common(hsm.command('keygen').description('generate an EC key pair inside the token (CKA_SENSITIVE, not extractable) and print its pkcs11: URI'))
    .requiredOption('--token <label>', 'token label')
    .requiredOption('--label <label>', 'key label (CKA_LABEL)')
    .option('--curve <curve>', 'P-256 or P-384', curveArg, 'P-256' as Curve)
    .option('--id <hex>', 'CKA_ID (default: 16 random bytes)', hexArg)
    .option('--public-key-out <path>', 'also write the public key (PEM) here')
    .action((o: { module: string; token: string; label: string; curve: Curve; id?: Uint8Array; publicKeyOut?: string } & PinOpts) =>
      run(() => withModule(o, async (m) => {
        const token = m.findToken({ token: o.token, vendor: {} });
        const key = generateEcKeyPair(m, token, pinFrom(o), { label: o.label, curve: o.curve, ...(o.id ? { id: o.id } : {}) });
        if (o.publicKeyOut) {
          const { writeFileSync } = await import('node:fs');
          writeFileSync(o.publicKeyOut, publicKeyToPem(key.publicKey));
        }
        process.stdout.write(`${key.uri}\n`);
      })));

  common(hsm.command('list').description("list the token's private keys and their protection attributes"))
    .requiredOption('--token <label>', 'token label')
    .option('--json', 'JSON output')
    .action((o: { module: string; token: string; json?: boolean } & PinOpts) => run(() => withModule(o, (m) => {
      const keys = listPrivateKeys(m, m.findToken({ token: o.token, vendor: {} }), pinFrom(o));
      if (o.json) { process.stdout.write(`${JSON.stringify(keys, null, 2)}\n`); return; }
      for (const k of keys) {
        const prot = [k.sensitive && 'sensitive', !k.extractable && 'not-extractable', k.neverExtractable && 'never-extractable'].filter(Boolean).join(', ');
        process.stdout.write(`${k.label.padEnd(24)} id=${k.id} ${k.keyType} ${prot}\n`);
      }
    })));

  common(hsm.command('pki-init').description('provision the demo/lab PKI with the CA and voucher-signing keys inside the token'))
    .requiredOption('--token <label>', 'token label (initialise it first with init-token)')
    .requiredOption('--out <dir>', 'output directory for certificates and configs (must be empty unless --force)')
    .option('--curve <curve>', 'curve of the IDevID CA, MASA signer and domain CA keys (the root is P-384)', curveArg, 'P-256' as Curve)
    .option('--devices <n>', 'number of pledge IDevIDs to issue with the HSM IDevID CA', (v) => {
      if (!/^\d+$/.test(v) || Number(v) > 100_000) throw new InvalidArgumentError('--devices must be 0..100000');
      return Number(v);
    }, 3)
    .option('--masa-url <authority>', 'MASA URL extension value for the IDevIDs', 'localhost:9443')
    .option('--key-prefix <prefix>', 'prefix for the key labels in the token', 'brski-')
    .option('--force', 'write into a non-empty directory')
    .action((o: { module: string; token: string; out: string; curve: Curve; devices: number; masaUrl: string; keyPrefix: string; force?: boolean } & PinOpts) =>
      run(async () => {
        if (!o.pinFile && !o.pinEnv) throw new HsmError('pin-missing', 'pki-init writes configs that must name the PIN source: give --pin-file or --pin-env');
        pinFrom(o); // fail before touching the token if the source is unusable
        const result = await withModuleResult(o, (m) => hsmPkiInit(m, {
          modulePath: resolveModulePath(o.module), token: o.token, out: o.out, curve: o.curve, devices: o.devices, masaUrl: o.masaUrl,
          keyPrefix: o.keyPrefix, force: !!o.force, pinSource: o.pinFile ? { pinFile: o.pinFile } : { pinEnv: o.pinEnv! },
        }));
        process.stdout.write(`${result.summary}\n`);
      }));
}

async function withModuleResult<T>(o: { module: string }, fn: (m: Pkcs11Module) => Promise<T>): Promise<T> {
  const mod = getModule(resolveModulePath(o.module));
  try { return await fn(mod); } finally { finalizeAllModules(); }
}
