/** Temporary directories that are removed when the test process exits (even on failure). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs = new Set<string>();
let hooked = false;

function cleanupAll(): void {
  for (const d of dirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort at exit */ }
  }
  dirs.clear();
}

export interface TempDir {
  path: string;
  /** Removes the directory now (idempotent). */
  cleanup(): void;
}

export function makeTempDir(prefix = 'brski-test-'): TempDir {
  if (!hooked) {
    hooked = true;
    process.once('exit', cleanupAll);
  }
  const path = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(path);
  return {
    path,
    cleanup() {
      dirs.delete(path);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` with a fresh directory and removes it afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T, prefix?: string): Promise<T> {
  const dir = makeTempDir(prefix);
  try {
    return await fn(dir.path);
  } finally {
    dir.cleanup();
  }
}
