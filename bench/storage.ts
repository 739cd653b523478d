/**
 * `npm run bench:storage [-- --dir <path>] [-- --seconds <n>] [-- --reopen-gib <n>]` — the
 * durable storage against the disk it sits on. Figures, not pass/fail. Prints:
 *
 * - the raw rate of the disk under the data directory: a plain loop of write + fdatasync of
 *   the same byte sizes the store writes per batch, once appending to a growing file and once
 *   overwriting a preallocated (zero-filled) one;
 * - the store's appends/s and MB/s (entry payload) at batch sizes 1, 16 and 256 with 256-byte
 *   entries, for io 'sync' (the default) and 'async', and the ratio store/raw;
 * - the time to reopen a ~1 GiB log.
 *
 * The variants of one batch size run interleaved in short slices (raw, store, raw, store...),
 * so that a disk shared with other work slows them alike and the ratios stay meaningful.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry } from '../src/core/messages.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { align8, batchLength } from '../src/storage/wal/format.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const ROOT = path.resolve(arg('dir', 'bench/results/storage-data'));
const SECONDS = Number(arg('seconds', '3'));
const SLICE_MS = 150;
const REOPEN_GIB = Number(arg('reopen-gib', '1'));
const ENTRY = 256;
const BATCHES = [1, 16, 256];
const MiB = 1024 * 1024;
const SEGMENT = 64 * MiB;

const payload = new Uint8Array(ENTRY).fill(0x5a);

function batchBytes(n: number): number {
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) entries.push({ index: 1, term: 1, type: 'normal', data: payload });
  return align8(batchLength({ entries: [entries] }));
}

let dirCount = 0;
/**
 * A new directory for each store. Nothing is deleted until the end: on a file system mounted
 * with `discard`, deleting hundreds of MB sends TRIMs that slow the syncs measured next.
 */
function fresh(name: string): string {
  const d = path.join(ROOT, `${name}-${dirCount++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Something measured in slices: `run(untilMs)` does operations until then, returns how many. */
interface Variant {
  readonly name: string;
  run(until: number): Promise<number>;
  ops: number;
  ms: number;
  close(): Promise<void>;
}

/** Plain write + fdatasync of `bytes`, appending to a growing file or overwriting a zero-filled one. */
function rawVariant(bytes: number, preallocated: boolean): Variant {
  const file = path.join(fresh('raw'), 'f');
  const fd = fs.openSync(file, 'w+');
  if (preallocated) {
    const z = Buffer.alloc(MiB);
    for (let p = 0; p < SEGMENT; p += MiB) fs.writeSync(fd, z, 0, MiB, p);
    fs.fsyncSync(fd);
  }
  const buf = Buffer.alloc(bytes, 0x5a);
  let pos = 0;
  return {
    name: preallocated ? 'raw, preallocated' : 'raw, appending',
    ops: 0,
    ms: 0,
    async run(until) {
      let n = 0;
      while (performance.now() < until) {
        if (pos + bytes > SEGMENT) {
          if (!preallocated) fs.ftruncateSync(fd, 0);
          pos = 0;
        }
        fs.writeSync(fd, buf, 0, bytes, pos);
        fs.fdatasyncSync(fd);
        pos += bytes;
        n++;
      }
      return n;
    },
    async close() {
      fs.closeSync(fd);
    },
  };
}

async function storeVariant(n: number, io: 'sync' | 'async'): Promise<Variant> {
  const s = await FileStorage.open(fresh('store'), { io });
  let next = 1;
  return {
    name: `store, io '${io}'`,
    ops: 0,
    ms: 0,
    async run(until) {
      let k = 0;
      while (performance.now() < until) {
        const entries: Entry[] = new Array<Entry>(n);
        for (let j = 0; j < n; j++) entries[j] = { index: next + j, term: 1, type: 'normal', data: payload };
        await s.save({ entries });
        next += n;
        k++;
      }
      return k;
    },
    close: () => s.close(),
  };
}

async function interleave(variants: Variant[]): Promise<void> {
  const end = performance.now() + SECONDS * 1000 * variants.length;
  while (performance.now() < end) {
    for (const v of variants) {
      const t0 = performance.now();
      v.ops += await v.run(t0 + SLICE_MS);
      v.ms += performance.now() - t0;
    }
  }
}

async function reopen(
  gib: number,
): Promise<{ entries: number; bytes: number; writeS: number; openMs: number[] }> {
  const dir = fresh('reopen');
  const s = await FileStorage.open(dir, { io: 'async' });
  const per = 1024;
  const target = gib * 1024 * MiB;
  const perBatch = batchBytes(per);
  let next = 1;
  const t0 = performance.now();
  for (let written = 0; written < target; written += perBatch) {
    const entries: Entry[] = new Array<Entry>(per);
    for (let k = 0; k < per; k++) entries[k] = { index: next + k, term: 1, type: 'normal', data: payload };
    await s.save({ entries });
    next += per;
  }
  const writeS = (performance.now() - t0) / 1000;
  await s.close();
  let bytes = 0;
  for (const f of fs.readdirSync(path.join(dir, 'wal'))) bytes += fs.statSync(path.join(dir, 'wal', f)).size;
  const openMs: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t1 = performance.now();
    const r = await FileStorage.open(dir);
    openMs.push(performance.now() - t1);
    if (r.lastIndex() !== next - 1)
      throw new Error(`reopened log ends at ${r.lastIndex()}, expected ${next - 1}`);
    await r.close();
  }
  return { entries: next - 1, bytes, writeS, openMs };
}

const fmt = (x: number, d = 0): string =>
  x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');

fs.rmSync(ROOT, { recursive: true, force: true });
fs.mkdirSync(ROOT, { recursive: true });
console.log(`tsraft storage benchmark — data directory ${ROOT}`);
console.log(
  `node ${process.version}, ${os.cpus().length} cores, load average ${load()}; ${ENTRY}-byte entries; ` +
    `each figure ${SECONDS} s, run in ${SLICE_MS} ms slices interleaved with the others of its batch size\n`,
);
console.log(
  '  batch  bytes/write  variant               batches/s   appends/s     MB/s   vs raw appending   vs raw preallocated',
);
for (const n of BATCHES) {
  const bytes = batchBytes(n);
  const rawA = rawVariant(bytes, false);
  const rawP = rawVariant(bytes, true);
  const stores = [await storeVariant(n, 'sync'), await storeVariant(n, 'async')];
  const all = [rawA, rawP, ...stores];
  await interleave(all);
  const rate = (v: Variant): number => v.ops / (v.ms / 1000);
  for (const v of all) {
    const r = rate(v);
    const isStore = v.name.startsWith('store');
    console.log(
      `  ${String(n).padStart(5)}  ${String(bytes).padStart(11)}  ${v.name.padEnd(20)}  ${fmt(r).padStart(9)}  ${fmt(r * n).padStart(10)}  ${fmt((r * n * ENTRY) / 1e6, 1).padStart(7)}` +
        (isStore ? `   ${fmt(r / rate(rawA), 2).padStart(16)}   ${fmt(r / rate(rawP), 2).padStart(19)}` : ''),
    );
    await v.close();
  }
  console.log('');
}

if (REOPEN_GIB > 0) {
  const r = await reopen(REOPEN_GIB);
  console.log(
    `reopen: ${fmt(r.entries)} entries, ${fmt(r.bytes / MiB)} MiB of segments (written in ${fmt(r.writeS, 1)} s) ` +
      `reopened in ${r.openMs.map((t) => fmt(t)).join(' / ')} ms (3 opens, page cache warm)`,
  );
}
console.log(`\nload average at the end: ${load()}`);
fs.rmSync(ROOT, { recursive: true, force: true });
