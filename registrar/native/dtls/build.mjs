#!/usr/bin/env node
// Builds the DTLS addon (build/Release/brski_dtls.node) with the node-gyp bundled in npm, against
// the headers of the running node (no download when <prefix>/include/node exists). Idempotent:
// skips the build when the binary is newer than every source file. Safe to run concurrently
// (test workers): a lock directory serialises builds.
//   node registrar/native/dtls/build.mjs [--force]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const binary = join(here, 'build', 'Release', 'brski_dtls.node');
const sources = [join(here, 'binding.gyp'), ...readdirSync(join(here, 'src')).map((f) => join(here, 'src', f))];
const force = process.argv.includes('--force');

const upToDate = () => existsSync(binary) && sources.every((s) => statSync(s).mtimeMs <= statSync(binary).mtimeMs);

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`node-gyp not found (looked at ${candidates.join(', ')}); install npm's node-gyp or set npm_config_node_gyp`);
  return found;
}

function build() {
  const prefix = join(dirname(process.execPath), '..');
  const args = [nodeGyp(), 'rebuild'];
  // Headers of this very node (and its OpenSSL) when installed with it; otherwise node-gyp fetches them.
  if (existsSync(join(prefix, 'include', 'node', 'node.h'))) args.push(`--nodedir=${prefix}`);
  execFileSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
}

const lock = join(here, '.build-lock');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
if (force || !upToDate()) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try { mkdirSync(lock); break; } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      // A lock older than the deadline is a crashed build.
      if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error('timed out waiting for another DTLS addon build');
      sleep(250);
    }
  }
  try {
    if (force || !upToDate()) build();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
if (!existsSync(binary)) throw new Error(`DTLS addon missing after build: ${binary}`);
