/**
 * Benchmark runner: `npm run bench [-- [--json] [--dir <d>] [filter…]]`.
 * Discovers <dir>/*.bench.ts (default: this directory), each exporting
 *   run(): Promise<Array<{ name: string; opsPerSec: number; note?: string }>>
 * runs them one after another (never in parallel: they would skew each other), shows progress on
 * stderr and prints one table (or JSON with --json) on stdout. A filter keeps files whose name
 * contains any of the given words. Not part of `npm test`.
 */
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface BenchResult { name: string; opsPerSec: number; note?: string }
interface Row extends BenchResult { file: string }
interface Failure { file: string; error: string }

const { values, positionals } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    dir: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: true,
});

if (values.help) {
  process.stdout.write('usage: npm run bench -- [--json] [--dir <dir>] [filter ...]\n');
  process.exit(0);
}

const dir = resolve(values.dir ?? dirname(fileURLToPath(import.meta.url)));
const filters = positionals.map((p) => p.toLowerCase());
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.toLowerCase().includes(w)))
  .sort();

const progress = (text: string): void => { process.stderr.write(`${text}\n`); };

function validate(file: string, value: unknown): BenchResult[] {
  if (!Array.isArray(value)) throw new Error(`${file}: run() must resolve to an array`);
  return value.map((r: unknown, i) => {
    const x = r as Partial<BenchResult>;
    if (typeof x?.name !== 'string' || typeof x.opsPerSec !== 'number' || !Number.isFinite(x.opsPerSec) || x.opsPerSec < 0) {
      throw new Error(`${file}: result ${i} needs a name and a finite, non-negative opsPerSec`);
    }
    if (x.note !== undefined && typeof x.note !== 'string') throw new Error(`${file}: result ${i} note must be a string`);
    return { name: x.name, opsPerSec: x.opsPerSec, ...(x.note === undefined ? {} : { note: x.note }) };
  });
}

const rows: Row[] = [];
const failures: Failure[] = [];
if (files.length === 0) progress(`no *.bench.ts files in ${dir}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);

for (const [i, file] of files.entries()) {
  const label = basename(file, '.bench.ts');
  progress(`[${i + 1}/${files.length}] ${label} …`);
  const start = performance.now();
  try {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { run?: () => Promise<unknown> };
    if (typeof mod.run !== 'function') throw new Error(`${file} does not export run()`);
    const results = validate(file, await mod.run());
    for (const r of results) rows.push({ file: label, ...r });
    progress(`[${i + 1}/${files.length}] ${label}: ${results.length} result(s) in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    failures.push({ file: label, error });
    progress(`[${i + 1}/${files.length}] ${label}: FAILED: ${error}`);
  }
}

const cpuList = cpus();
const environment = {
  node: process.versions.node,
  platform: `${process.platform}-${process.arch}`,
  cpu: cpuList[0]?.model.trim() ?? 'unknown',
  cores: cpuList.length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  date: new Date().toISOString(),
};

if (values.json) {
  process.stdout.write(`${JSON.stringify({ environment, results: rows, failures }, null, 2)}\n`);
} else {
  printTable();
}
process.exitCode = failures.length > 0 ? 1 : 0;

function formatOps(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  if (n >= 1) return n.toFixed(1);
  return n.toPrecision(2);
}

function printTable(): void {
  const head = ['bench', 'case', 'ops/s', 'note'];
  const body = rows.map((r) => [r.file, r.name, formatOps(r.opsPerSec), r.note ?? '']);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  const out = [
    `node ${environment.node} · ${environment.platform} · ${environment.cpu} × ${environment.cores} · ${environment.memoryGiB} GiB`,
    '',
    line(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
  ];
  if (failures.length) out.push('', ...failures.map((f) => `FAILED ${f.file}: ${f.error}`));
  process.stdout.write(`${out.join('\n')}\n`);
}
