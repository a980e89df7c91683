/**
 * One loaded + initialised PKCS#11 library per module path per process. C_Initialize is
 * process-wide state in the library (and login state hangs off it), so loading the same
 * module twice would either fail (CKR_CRYPTOKI_ALREADY_INITIALIZED) or silently share state.
 */
import pkcs11js from 'pkcs11js';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HsmError, ckrOf } from './errors.ts';
import type { Pkcs11Uri } from './uri.ts';

export type Handle = Buffer;

export interface TokenDescription {
  slot: Handle;
  slotId: bigint;
  label: string;
  serial: string;
  manufacturer: string;
  model: string;
  slotDescription: string;
  slotManufacturer: string;
  flags: number;
}

/** PKCS#11 fixed-width strings are blank padded (some tokens pad with NULs). */
function unpad(s: string): string {
  return s.replace(/[ \0]+$/, '');
}

export class Pkcs11Module {
  readonly path: string;
  readonly lib: pkcs11js.PKCS11;
  #finalized = false;

  readonly #ownsInit: boolean;

  constructor(path: string, lib: pkcs11js.PKCS11, ownsInit: boolean) {
    this.path = path;
    this.lib = lib;
    this.#ownsInit = ownsInit;
  }

  get finalized(): boolean { return this.#finalized; }

  /** Tokens present now, with their identifying fields trimmed of PKCS#11 blank padding. */
  tokens(): TokenDescription[] {
    const out: TokenDescription[] = [];
    for (const slot of this.lib.C_GetSlotList(true)) {
      const ti = this.lib.C_GetTokenInfo(slot);
      const si = this.lib.C_GetSlotInfo(slot);
      out.push({
        slot, slotId: slot.readBigUInt64LE(0), label: unpad(ti.label), serial: unpad(ti.serialNumber).trimStart(),
        manufacturer: unpad(ti.manufacturerID), model: unpad(ti.model), flags: ti.flags,
        slotDescription: unpad(si.slotDescription), slotManufacturer: unpad(si.manufacturerID),
      });
    }
    return out;
  }

  /** The single initialised token matching the URI's token/slot attributes. */
  findToken(uri: Pkcs11Uri): TokenDescription {
    this.#checkLibrary(uri);
    let all: TokenDescription[];
    try {
      all = this.tokens();
    } catch (e) {
      const ckr = ckrOf(e);
      throw new HsmError('token-not-found', `cannot list tokens of ${this.path}${ckr ? `: ${ckr}` : ''}`, { cause: e, ...(ckr ? { ckr } : {}) });
    }
    const matches = all.filter((t) =>
      (t.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0
      && (uri.token === undefined || t.label === uri.token)
      && (uri.serial === undefined || t.serial === uri.serial)
      && (uri.manufacturer === undefined || t.manufacturer === uri.manufacturer)
      && (uri.model === undefined || t.model === uri.model)
      && (uri.slotId === undefined || t.slotId === BigInt(uri.slotId))
      && (uri.slotDescription === undefined || t.slotDescription === uri.slotDescription)
      && (uri.slotManufacturer === undefined || t.slotManufacturer === uri.slotManufacturer));
    const what = describeTokenSelector(uri);
    if (matches.length === 0) throw new HsmError('token-not-found', `no initialised token matches ${what} in ${this.path}`);
    if (matches.length > 1) {
      throw new HsmError('token-ambiguous', `${matches.length} tokens match ${what}; add token=/serial= to the URI`);
    }
    return matches[0]!;
  }

  #checkLibrary(uri: Pkcs11Uri): void {
    if (uri.libraryManufacturer === undefined && uri.libraryDescription === undefined && uri.libraryVersion === undefined) return;
    const info = this.lib.C_GetInfo();
    const ok = (uri.libraryManufacturer === undefined || unpad(info.manufacturerID) === uri.libraryManufacturer)
      && (uri.libraryDescription === undefined || unpad(info.libraryDescription) === uri.libraryDescription)
      && (uri.libraryVersion === undefined || (info.libraryVersion.major === uri.libraryVersion.major
        && info.libraryVersion.minor === uri.libraryVersion.minor));
    if (!ok) throw new HsmError('token-not-found', `module ${this.path} does not match the URI's library attributes`);
  }

  /** Test and shutdown hook: C_Finalize and forget the module (every session and login ends). */
  finalize(): void {
    if (this.#finalized) return;
    this.#finalized = true;
    modules.delete(this.path);
    try {
      if (this.#ownsInit) this.lib.C_Finalize();
    } catch (e) {
      if (ckrOf(e) !== 'CKR_CRYPTOKI_NOT_INITIALIZED') throw e;
    } finally {
      this.lib.close();
    }
  }
}

function describeTokenSelector(uri: Pkcs11Uri): string {
  const parts = Object.entries({ token: uri.token, serial: uri.serial, manufacturer: uri.manufacturer, model: uri.model, 'slot-id': uri.slotId })
    .filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length ? parts.join(';') : 'any token';
}

const modules = new Map<string, Pkcs11Module>();

/**
 * Resolves the module file from config / URI (module-path may be a file, or a directory with
 * module-name, per RFC 7512 §2.3) to a canonical path so two spellings share one instance.
 */
export function resolveModulePath(modulePath: string | undefined, moduleName?: string): string {
  if (!modulePath) throw new HsmError('module-load', 'no PKCS#11 module configured (module, or module-path in the URI)');
  let file = modulePath;
  if (existsSync(file) && statSync(file).isDirectory()) {
    if (!moduleName) throw new HsmError('module-load', `module-path ${modulePath} is a directory and no module-name is given`);
    file = join(file, moduleName.endsWith('.so') ? moduleName : `${moduleName}.so`);
  }
  if (!existsSync(file)) throw new HsmError('module-load', `PKCS#11 module not found: ${file}`);
  return file;
}

/** The process-wide instance of a module: loaded and C_Initialize'd on first use. */
export function getModule(modulePath: string): Pkcs11Module {
  // Canonical path: distro paths are often symlinks, and two instances of one library would share
  // (and finalize) each other's state.
  let path: string;
  try { path = realpathSync(modulePath); } catch { throw new HsmError('module-load', `PKCS#11 module not found: ${modulePath}`); }
  const existing = modules.get(path);
  if (existing) return existing;
  const lib = new pkcs11js.PKCS11();
  let ownsInit = true;
  try {
    lib.load(path);
  } catch (e) {
    throw new HsmError('module-load', `cannot load PKCS#11 module ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    // OS locking: signatures run on libuv worker threads (C_SignAsync), so the library must lock.
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    const ckr = ckrOf(e);
    if (ckr !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      lib.close();
      throw new HsmError('module-load', `C_Initialize of ${path} failed${ckr ? `: ${ckr}` : ''}`, { cause: e, ...(ckr ? { ckr } : {}) });
    }
    // Initialised by other code in this process (another binding): share it, but leave C_Finalize to its owner.
    ownsInit = false;
  }
  const mod = new Pkcs11Module(path, lib, ownsInit);
  modules.set(path, mod);
  return mod;
}

/** Finalizes every loaded module (process shutdown, tests). */
export function finalizeAllModules(): void {
  for (const m of [...modules.values()]) m.finalize();
}
