/**
 * Token administration used by `brski hsm` and the tests: initialise a token, generate an EC key
 * pair INSIDE it (sensitive, never extractable, persistent), list keys. Runs through the same
 * process-wide module instance as the signers.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { CURVE_PARAMS, ecPublicKey, type Curve } from './ec.ts';
import { HsmError, ckrOf, ulong } from './errors.ts';
import { type Handle, type Pkcs11Module, type TokenDescription } from './module.ts';
import { formatPkcs11Uri } from './uri.ts';

function wrap(e: unknown, what: string): HsmError {
  if (e instanceof HsmError) return e;
  const ckr = ckrOf(e);
  return new HsmError('device-error', `${what} failed${ckr ? `: ${ckr}` : `: ${(e as Error).message}`}`, { cause: e, ...(ckr ? { ckr } : {}) });
}

/**
 * Initialises the first uninitialised token (SoftHSM2 always offers one) with a label, SO PIN and
 * user PIN. Refuses if a token with that label already exists: re-initialising would wipe its keys.
 */
export function initToken(mod: Pkcs11Module, opts: { label: string; soPin: string; userPin: string }): TokenDescription {
  const all = mod.tokens();
  if (all.some((t) => (t.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0 && t.label === opts.label)) {
    throw new HsmError('token-ambiguous', `a token labelled '${opts.label}' already exists`);
  }
  const free = all.find((t) => (t.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0);
  if (!free) throw new HsmError('token-not-found', `no uninitialised token/slot left in ${mod.path}`);
  const lib = mod.lib;
  // CK_UTF8CHAR label[32], blank padded: a shorter string would be NUL padded by the binding.
  const bytes = Buffer.byteLength(opts.label, 'utf8');
  if (bytes === 0 || bytes > 32) throw new HsmError('device-error', 'token label must be 1..32 bytes of UTF-8');
  try {
    lib.C_InitToken(free.slot, opts.soPin, opts.label + ' '.repeat(32 - bytes));
  } catch (e) { throw wrap(e, 'C_InitToken'); }
  // SoftHSM2 moves the token to a new slot id on initialisation: find it again by label.
  const token = mod.findToken({ token: opts.label, vendor: {} });
  const session = lib.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    lib.C_Login(session, pkcs11js.CKU_SO, opts.soPin);
    lib.C_InitPIN(session, opts.userPin);
    lib.C_Logout(session);
  } catch (e) {
    throw wrap(e, 'setting the user PIN');
  } finally {
    lib.C_CloseSession(session);
  }
  return mod.findToken({ token: opts.label, vendor: {} });
}

/** Opens a read-write session logged in as the user (CKR_USER_ALREADY_LOGGED_IN is fine: login is per process). */
function userSession(mod: Pkcs11Module, token: TokenDescription, pin: string): Handle {
  const lib = mod.lib;
  const session = lib.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (e) {
    const ckr = ckrOf(e);
    if (ckr !== 'CKR_USER_ALREADY_LOGGED_IN') {
      lib.C_CloseSession(session);
      if (ckr === 'CKR_PIN_INCORRECT') throw new HsmError('pin-incorrect', `login to token '${token.label}' refused: wrong PIN`, { ckr });
      throw wrap(e, 'C_Login');
    }
  }
  return session;
}

export interface GeneratedKey {
  label: string;
  id: Uint8Array;
  curve: Curve;
  publicKey: KeyObject;
  /** URI naming the private key (token + object + id + type=private), without module or PIN. */
  uri: string;
}

export interface KeygenOptions {
  label: string;
  curve: Curve;
  /** CKA_ID; 16 random bytes by default. */
  id?: Uint8Array;
  /** Test-only escape hatch to create a key the signer must refuse. Never set by the CLI. */
  insecureExtractable?: boolean;
}

/** Generates an EC key pair inside the token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false. */
export function generateEcKeyPair(mod: Pkcs11Module, token: TokenDescription, pin: string, opts: KeygenOptions): GeneratedKey {
  const lib = mod.lib;
  const id = opts.id ?? randomBytes(16);
  const session = userSession(mod, token, pin);
  try {
    for (const t of [[{ type: pkcs11js.CKA_LABEL, value: opts.label }], [{ type: pkcs11js.CKA_ID, value: Buffer.from(id) }]]) {
      lib.C_FindObjectsInit(session, t);
      const clash = lib.C_FindObjects(session, 1);
      lib.C_FindObjectsFinal(session);
      if (clash.length) throw new HsmError('key-ambiguous', `token '${token.label}' already holds an object with this ${t[0]!.type === pkcs11js.CKA_LABEL ? `label '${opts.label}'` : 'id'}`);
    }
    const common = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: opts.label },
      { type: pkcs11js.CKA_ID, value: Buffer.from(id) },
    ];
    const pair = lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN }, [
      ...common,
      { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from(CURVE_PARAMS[opts.curve], 'hex') },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
    ], [
      ...common,
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: !opts.insecureExtractable },
      { type: pkcs11js.CKA_EXTRACTABLE, value: !!opts.insecureExtractable },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ]);
    const [params, point] = lib.C_GetAttributeValue(session, pair.publicKey, [{ type: pkcs11js.CKA_EC_PARAMS }, { type: pkcs11js.CKA_EC_POINT }]).map((a) => a.value);
    const publicKey = ecPublicKey(params!, point!);
    return {
      label: opts.label, id, curve: opts.curve, publicKey,
      uri: formatPkcs11Uri({ token: token.label, serial: token.serial, object: opts.label, id, type: 'private' }),
    };
  } catch (e) {
    throw wrap(e, 'key generation');
  } finally {
    try { lib.C_CloseSession(session); } catch { /* ignore */ }
  }
}

export interface KeyInfo {
  label: string;
  id: string;
  keyType: string;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

/** Private keys on the token with their protection attributes (what an auditor wants to see). */
export function listPrivateKeys(mod: Pkcs11Module, token: TokenDescription, pin: string): KeyInfo[] {
  const lib = mod.lib;
  const session = userSession(mod, token, pin);
  try {
    lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]);
    const keys = lib.C_FindObjects(session, 1000);
    lib.C_FindObjectsFinal(session);
    return keys.map((k) => {
      const [label, id, kt, s, x, as, nx] = lib.C_GetAttributeValue(session, k, [
        { type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_ID }, { type: pkcs11js.CKA_KEY_TYPE }, { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_ALWAYS_SENSITIVE }, { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]).map((a) => a.value);
      return {
        label: label!.toString('utf8'), id: id!.toString('hex'),
        keyType: ulong(kt!) === pkcs11js.CKK_EC ? 'EC' : `0x${ulong(kt!).toString(16)}`,
        sensitive: s![0] === 1, extractable: x![0] === 1, alwaysSensitive: as![0] === 1, neverExtractable: nx![0] === 1,
      };
    });
  } finally {
    try { lib.C_CloseSession(session); } catch { /* ignore */ }
  }
}
