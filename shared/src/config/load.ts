/**
 * Service configuration: one YAML file validated by a zod schema, with environment overrides for
 * containers. Rules (docs/operations.md):
 *  - `${envPrefix}__A__B=value` sets `a.b` (double underscore = one level deeper; segments match
 *    keys case-insensitively, underscores ignored, so KEEP_ALIVE_MS → keepAliveMs). With a prefix
 *    ending in `_` (e.g. `BRSKI_`) the remainder starts directly: BRSKI_MASA__LISTEN__PORT → masa.listen.port.
 *    Values are parsed as JSON when they parse (9443, true, ["a"]) unless the schema wants a string.
 *  - Keys named `…File`, `…Path`, `…Dir` (or file/path/dir) hold paths, resolved against the
 *    config file's directory; URIs (pkcs11:, https://) are left alone.
 *  - `<name>_file: path` reads a secret from a file into `<name>` (Docker/Kubernetes secrets);
 *    one trailing newline is removed.
 *  - Errors name the key path and, for env overrides, the variable; values never appear in them.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { BrskiError } from '../errors.ts';
import { childOf, wantsString } from './schema-walk.ts';

export interface ConfigIssue { path: string; message: string }

export class ConfigError extends BrskiError {
  readonly issues: readonly ConfigIssue[];
  constructor(source: string, issues: ConfigIssue[]) {
    super('malformed', `invalid configuration (${source}):\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`);
    this.issues = issues;
  }
}

export interface LoadConfigOptions {
  /** e.g. 'BRSKI_MASA' (vars BRSKI_MASA__LISTEN__PORT) or 'BRSKI_' (vars BRSKI_MASA__LISTEN__PORT → masa.listen.port). */
  envPrefix?: string;
  /** Environment to read (tests); default process.env. */
  env?: NodeJS.ProcessEnv;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export function loadConfig<S extends z.ZodType>(path: string, schema: S, opts: LoadConfigOptions = {}): z.output<S> {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true, prettyErrors: true }) ?? {};
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (!isObj(raw)) throw new ConfigError(file, [{ path: '', message: 'expected a mapping at the top level' }]);
  return buildConfig(raw, schema, { ...opts, baseDir: dirname(file), source: file });
}

/** The same pipeline on an already-parsed object (tests, configs assembled in code). */
export function buildConfig<S extends z.ZodType>(raw: Obj, schema: S,
  opts: LoadConfigOptions & { baseDir: string; source?: string }): z.output<S> {
  const source = opts.source ?? 'inline';
  const data = structuredClone(raw);
  const envSources = applyEnv(data, schema, opts.envPrefix, opts.env ?? process.env, source);
  const issues: ConfigIssue[] = [];
  resolvePaths(data, opts.baseDir, '', issues);
  if (issues.length) throw new ConfigError(source, issues);

  const result = schema.safeParse(data);
  if (!result.success) {
    throw new ConfigError(source, result.error.issues.flatMap((i) => {
      const base = formatPath(i.path);
      const fromEnv = (p: string): string => (envSources.has(p) ? ` (set by ${envSources.get(p)})` : '');
      if (i.code === 'unrecognized_keys') {
        return i.keys.map((k) => { const p = base ? `${base}.${k}` : k; return { path: p, message: `unknown key${fromEnv(p)}` }; });
      }
      return [{ path: base, message: `${i.message.replace(/^Invalid input: /, '')}${fromEnv(base)}` }];
    }));
  }
  return result.data;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

/** Applies env overrides in place; returns key path → variable name, for error messages. */
function applyEnv(data: Obj, schema: z.ZodType, prefix: string | undefined, env: NodeJS.ProcessEnv, source: string): Map<string, string> {
  const sources = new Map<string, string>();
  if (!prefix) return sources;
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (value === undefined || !name.startsWith(prefix)) continue;
    let rest = name.slice(prefix.length);
    if (!prefix.endsWith('_')) {
      if (!rest.startsWith('__')) continue; // e.g. BRSKI_MASA_OTHER belongs to someone else
      rest = rest.slice(2);
    }
    const segments = rest.split('__');
    if (segments.some((s) => s === '')) {
      issues.push({ path: '', message: `${name}: empty path segment` });
      continue;
    }
    let node: unknown = data;
    let s: z.ZodType | undefined = schema;
    const keys: Array<string | number> = [];
    let ok = true;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const container = node as Obj | unknown[];
      let found = childOf(s, seg, container);
      const secretFile = /^(.+)_FILE$/i.exec(seg);
      if (!found.known && secretFile && i === segments.length - 1) {
        // X__PIN_FILE=/run/secrets/pin → pin_file, read below like the YAML form.
        const base = childOf(s, secretFile[1]!, container);
        if (base.known) found = { key: `${base.key}_file`, schema: undefined, known: true };
      }
      if (!found.known) {
        issues.push({ path: formatPath([...keys, seg.toLowerCase()]), message: `${name} does not name a configuration key` });
        ok = false;
        break;
      }
      const key: string | number = Array.isArray(container) ? Number(found.key) : found.key;
      keys.push(key);
      s = found.schema;
      if (i === segments.length - 1) {
        (container as Record<string | number, unknown>)[key] = parseEnvValue(value, s);
      } else {
        const next = (container as Record<string | number, unknown>)[key];
        if (next === null || typeof next !== 'object') {
          (container as Record<string | number, unknown>)[key] = /^\d+$/.test(segments[i + 1]!) ? [] : {};
        }
        node = (container as Record<string | number, unknown>)[key];
      }
    }
    if (ok) sources.set(formatPath(keys), name);
  }
  if (issues.length) throw new ConfigError(`${source} + environment`, issues);
  return sources;
}

function parseEnvValue(value: string, s: z.ZodType | undefined): unknown {
  if (wantsString(s)) return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

const PATH_KEY = /^(file|path|dir|files|paths|dirs)$|[a-z0-9](File|Path|Dir|Files|Paths|Dirs)$/;
const SECRET_FILE_KEY = /^(.+)_file$/;
const URI = /^[a-z][a-z0-9+.-]+:/i;

function resolveOne(v: unknown, baseDir: string): unknown {
  return typeof v === 'string' && v !== '' && !isAbsolute(v) && !URI.test(v) ? resolve(baseDir, v) : v;
}

function resolvePaths(node: unknown, baseDir: string, at: string, issues: ConfigIssue[]): void {
  if (Array.isArray(node)) {
    node.forEach((v, i) => resolvePaths(v, baseDir, `${at}[${i}]`, issues));
    return;
  }
  if (!isObj(node)) return;
  for (const key of Object.keys(node)) {
    const here = at ? `${at}.${key}` : key;
    const value = node[key];
    const secret = SECRET_FILE_KEY.exec(key);
    if (secret && typeof value === 'string') {
      const target = secret[1]!;
      if (node[target] !== undefined) {
        issues.push({ path: here, message: `both ${target} and ${key} are set; use one` });
        continue;
      }
      try {
        node[target] = readFileSync(resolveOne(value, baseDir) as string, 'utf8').replace(/\r?\n$/, '');
        delete node[key];
      } catch (err) {
        issues.push({ path: here, message: `cannot read secret file: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      }
      continue;
    }
    if (PATH_KEY.test(key)) {
      node[key] = Array.isArray(value) ? value.map((v) => resolveOne(v, baseDir)) : resolveOne(value, baseDir);
      continue;
    }
    resolvePaths(value, baseDir, here, issues);
  }
}

const SECRET_KEY = /(pin|password|passphrase|token|secret|privatekey|apikey|authorization)$/i;

/** A copy of a config with secret-looking values replaced, for a start-up log line. */
export function redactConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactConfig);
  if (!isObj(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && v !== undefined ? '[redacted]' : redactConfig(v)]));
}
