/**
 * kill -9 in the middle of installing a snapshot, at the storage level (issue 6): a child
 * process receives leaders' snapshots in chunks and installs them, takes local snapshots from
 * a stream and compacts, and appends entries; the parent SIGKILLs it at random moments (so the
 * kill lands while chunks are written, while the file is synced and renamed, between the meta
 * file and the WAL, ...), reopens the directory and checks that it recovered to a consistent
 * state: the snapshot is whole and checksummed, never older than the last one acknowledged,
 * the log after it holds every acknowledged entry, and no half-written file is left behind.
 * Then the child resumes from what was recovered.
 *
 * SNAPSHOT_CRASH_SEED replays the operations and delays; SNAPSHOT_CRASH_KILLS (default 30).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FileStorage } from '../../src/storage/file-storage.js';
import { bundleChild } from '../support/child-bundle.js';
import { snapshotBytes, snapshotSize } from '../support/snapshot-crash-data.js';
import { tmpDirs } from '../support/tmp-dirs.js';

const dirs = tmpDirs('snapcrash');
let child = '';

beforeAll(() => {
  child = bundleChild(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '../support/snapshot-child.ts'),
    dirs.make(),
  );
});
afterAll(() => dirs.cleanup());

const KILLS = Number(process.env['SNAPSHOT_CRASH_KILLS'] ?? 30);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function runAndKill(dir: string, seed: number, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, 'run', dir, String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      if (timer === undefined) timer = setTimeout(() => p.kill('SIGKILL'), delayMs);
      out += d;
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}: ${err}${out.slice(-500)}`));
      else resolve(out.split('\n').slice(0, -1));
    });
  });
}

it(`survives ${KILLS} SIGKILLs while receiving, installing and taking snapshots`, async () => {
  const seed = Number(process.env['SNAPSHOT_CRASH_SEED'] ?? Date.now() % 1_000_000);
  console.log(`snapshot crash test seed ${seed} (replay: SNAPSHOT_CRASH_SEED=${seed})`);
  const rand = rng(seed);
  const dir = dirs.make();
  const seen = { installs: 0, local: 0, midInstall: 0 };
  /** The newest snapshot acknowledged durable, and the entries acknowledged after it. */
  let acked = { snap: 0, snapTerm: 0, entries: new Map<number, number>() };
  for (let k = 0; k < KILLS; k++) {
    const lines = await runAndKill(dir, seed * 1000 + k, 30 + Math.floor(rand() * 400));
    let pending: string | undefined;
    for (const l of lines) {
      const [tag, kind, a, b, c] = l.split(' ');
      if (tag === 'P') pending = l;
      if (tag !== 'A') continue;
      pending = undefined;
      if (kind === 'I' || kind === 'S') {
        acked = { snap: Number(a), snapTerm: Number(b), entries: new Map() };
        if (kind === 'I') seen.installs++;
        else seen.local++;
      } else if (kind === 'E') {
        for (let i = Number(a); i <= Number(b); i++) acked.entries.set(i, Number(c));
      }
    }
    if (pending?.startsWith('P I')) seen.midInstall++;

    // Reopen: recovery must succeed and find a consistent state.
    const s = await FileStorage.open(dir, { segmentSize: 64 * 1024 });
    try {
      const meta = s.snapshot().meta;
      const ctx = `kill ${k} (seed ${seed}, in flight: ${pending ?? 'nothing'})`;
      expect(meta.index, ctx).toBeGreaterThanOrEqual(acked.snap);
      if (meta.index === acked.snap) expect(meta.term, ctx).toBe(acked.snapTerm);
      if (meta.index > acked.snap) {
        // Only the operation in flight may have taken effect beyond what was acknowledged.
        const [, kind, a, b] = (pending ?? '').split(' ');
        expect(kind === 'I' || kind === 'S', ctx).toBe(true);
        expect([meta.index, meta.term], ctx).toEqual([Number(a), Number(b)]);
        acked = { snap: meta.index, snapTerm: meta.term, entries: new Map() };
      }
      // The snapshot is whole: every byte as written.
      if (meta.index > 0) {
        const r = s.readSnapshot(256 * 1024);
        expect(r.size, ctx).toBe(snapshotSize(meta.index));
        let o = 0;
        for await (const chunk of r.chunks) {
          const want = snapshotBytes(meta.index, meta.term, o, o + chunk.byteLength);
          expect(Buffer.compare(Buffer.from(chunk), Buffer.from(want)), `${ctx} at byte ${o}`).toBe(0);
          o += chunk.byteLength;
        }
        expect(o, ctx).toBe(r.size);
      }
      // The log after the snapshot holds every entry acknowledged after it.
      expect(s.firstIndex(), ctx).toBeLessThanOrEqual(meta.index + 1);
      for (const [i, t] of acked.entries) {
        if (i <= meta.index) continue;
        expect(s.lastIndex(), `${ctx}: entry ${i}`).toBeGreaterThanOrEqual(i);
        expect(s.term(i), `${ctx}: entry ${i}`).toBe(t);
      }
      // Nothing half-written survives the reopen.
      const files = fs.readdirSync(path.join(dir, 'snap'));
      expect(
        files.filter((f) => f.endsWith('.tmp')),
        ctx,
      ).toEqual([]);
      expect(files.length, ctx).toBeLessThanOrEqual(1);
    } finally {
      await s.close();
    }
  }
  console.log(
    `${KILLS} kills: ${seen.installs} installs and ${seen.local} local snapshots acknowledged, ${seen.midInstall} kills landed inside an install`,
  );
  expect(seen.installs).toBeGreaterThan(0);
  expect(seen.midInstall).toBeGreaterThan(0);
}, 120_000);
