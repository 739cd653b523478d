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
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Entry } from '../src/core/messages.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { align8, batchLength, type WalOp } from '../src/storage/wal/format.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const ROOT = path.resolve(arg('dir', 'bench/results/storage-data'));
const SECONDS = Number(arg('seconds', '1.5'));
const REPEAT = Number(arg('repeat', '3'));
const REOPEN_GIB = Number(arg('reopen-gib', '1'));
const ENTRY = 256;
const BATCHES = [1, 16, 256];
const MiB = 1024 * 1024;

const payload = new Uint8Array(ENTRY).fill(0x5a);

function batchBytes(n: number): number {
  const ops: WalOp[] = [];
  for (let i = 0; i < n; i++)
    ops.push({ kind: 'entry', entry: { index: 1, term: 1, type: 'normal', data: payload } });
  return align8(batchLength(ops));
}

let dirCount = 0;
/**
 * A new directory for each run. Nothing is deleted until the end: on a file system mounted
 * with `discard`, deleting hundreds of MB sends TRIMs that slow the syncs measured next.
 */
function fresh(name: string): string {
  const d = path.join(ROOT, `${name}-${dirCount++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Median of `REPEAT` runs. */
async function median(run: () => number | Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let k = 0; k < REPEAT; k++) xs.push(await run());
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

/** Plain write + fdatasync loop; returns syncs per second. */
function raw(bytes: number, preallocated: boolean): number {
  const size = 64 * MiB;
  const file = path.join(ROOT, preallocated ? 'raw-preallocated' : 'raw-append');
  fs.mkdirSync(ROOT, { recursive: true });
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT);
  if (!preallocated) fs.ftruncateSync(fd, 0);
  if (preallocated && fs.fstatSync(fd).size < size) {
    const z = Buffer.alloc(MiB);
    for (let p = 0; p < size; p += MiB) fs.writeSync(fd, z, 0, MiB, p);
    fs.fsyncSync(fd);
  }
  const buf = Buffer.alloc(bytes, 0x5a);
  let pos = 0;
  let n = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    if (pos + bytes > size) {
      if (!preallocated) fs.ftruncateSync(fd, 0);
      pos = 0;
    }
    fs.writeSync(fd, buf, 0, bytes, pos);
    fs.fdatasyncSync(fd);
    pos += bytes;
    n++;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  fs.closeSync(fd);
  return rate;
}

/** The store appending batches of `n` entries back to back; returns batches per second. */
async function store(n: number, io: 'sync' | 'async'): Promise<number> {
  const s = await FileStorage.open(fresh('store'), { io });
  let next = 1;
  let batches = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    const entries: Entry[] = new Array<Entry>(n);
    for (let k = 0; k < n; k++) entries[k] = { index: next + k, term: 1, type: 'normal', data: payload };
    await s.save({ entries });
    next += n;
    batches++;
  }
  const rate = batches / ((performance.now() - t0) / 1000);
  await s.close();
  return rate;
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
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t1 = performance.now();
    const r = await FileStorage.open(dir);
    times.push(performance.now() - t1);
    if (r.lastIndex() !== next - 1)
      throw new Error(`reopened log ends at ${r.lastIndex()}, expected ${next - 1}`);
    await r.close();
  }
  const openMs = times;
  return { entries: next - 1, bytes, writeS, openMs };
}

const fmt = (x: number, d = 0): string =>
  x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

fs.rmSync(ROOT, { recursive: true, force: true });
fs.mkdirSync(ROOT, { recursive: true });
console.log(`tsraft storage benchmark — data directory ${ROOT}`);
console.log(
  `node ${process.version}, ${os.cpus().length} cores, load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}; ` + `median of ${REPEAT} runs of ${SECONDS} s per figure, ${ENTRY}-byte entries\n`,
);

console.log('raw disk: plain loop of write + fdatasync of the batch sizes the store writes');
console.log('  batch  bytes/write   append syncs/s   preallocated syncs/s');
const rawRates = new Map<number, { append: number; prealloc: number }>();
for (const n of BATCHES) {
  const bytes = batchBytes(n);
  const append = await median(() => raw(bytes, false));
  const prealloc = await median(() => raw(bytes, true));
  rawRates.set(n, { append, prealloc });
  console.log(
    `  ${String(n).padStart(5)}  ${String(bytes).padStart(11)}   ${fmt(append).padStart(14)}   ${fmt(prealloc).padStart(20)}`,
  );
}

for (const io of ['sync', 'async'] as const) {
  console.log(`\nFileStorage (io '${io}', O_DSYNC, 64 MiB preallocated segments)`);
  console.log('  batch   batches/s   appends/s    MB/s   store/raw-append   store/raw-prealloc');
  for (const n of BATCHES) {
    const rate = await median(() => store(n, io));
    const r = rawRates.get(n)!;
    const mbs = (rate * n * ENTRY) / 1e6;
    console.log(
      `  ${String(n).padStart(5)}  ${fmt(rate).padStart(10)}  ${fmt(rate * n).padStart(10)}  ${fmt(mbs, 1).padStart(6)}   ${fmt(rate / r.append, 2).padStart(16)}   ${fmt(rate / r.prealloc, 2).padStart(18)}`,
    );
  }
}

if (REOPEN_GIB > 0) {
  const r = await reopen(REOPEN_GIB);
  console.log(
    `\nreopen: ${fmt(r.entries)} entries, ${fmt(r.bytes / MiB)} MiB of segments (written in ${fmt(r.writeS, 1)} s) ` +
      `reopened in ${r.openMs.map((t) => fmt(t)).join(' / ')} ms (3 opens, page cache warm)`,
  );
}
console.log(
  `\nload average at the end: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
fs.rmSync(ROOT, { recursive: true, force: true });
