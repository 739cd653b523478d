/**
 * Crash test with real processes (issue 3): a child appends batches to a FileStorage and prints
 * each index range right after its sync returned; the parent SIGKILLs it at random moments,
 * reopens the directory, and checks that every acknowledged entry is present and intact, that
 * the log is a clean prefix (acknowledged state, or that plus the one write in flight), and
 * that the hard state was not forgotten. Then the child resumes from what was recovered.
 *
 * The seed drives the child's operations and the kill delays; it is printed, and
 * STORAGE_CRASH_SEED=<seed> replays the same operations and delays (the exact instant a kill
 * lands still depends on timing). STORAGE_CRASH_KILLS sets the number of kills (default 200).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Term } from '../../src/core/messages.js';
import { FileStorage } from '../../src/storage/file-storage.js';
import { bundleChild } from '../support/child-bundle.js';
import { entryData } from '../support/crash-data.js';
import { tmpDirs } from '../support/tmp-dirs.js';

const dirs = tmpDirs('crash');
let child = '';

beforeAll(() => {
  child = bundleChild(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '../support/storage-child.ts'),
    dirs.make(),
  );
});
afterAll(() => dirs.cleanup());

const KILLS = Number(process.env.STORAGE_CRASH_KILLS ?? 200);
const BUDGET_MS = 50_000;

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

/** The log as acknowledged: terms of indexes base+1..base+terms.length. */
interface Model {
  base: number;
  terms: Term[];
  hardTerm: Term;
}

type Op = { first: number; last: number; term: Term };

function applyOp(m: Model, op: Op): Model {
  const terms = m.terms.slice(0, Math.max(0, op.first - m.base - 1));
  for (let i = op.first; i <= op.last; i++) terms.push(op.term);
  return { base: m.base, terms, hardTerm: Math.max(m.hardTerm, op.term) };
}

/** Run the child until killed after `delayMs`; returns its output lines (complete ones). */
function runAndKill(
  dir: string,
  seed: number,
  delayMs: number,
): Promise<{ lines: string[]; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, 'append', dir, String(seed), String(64 * 1024)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      if (timer === undefined && out.length === 0) timer = setTimeout(() => p.kill('SIGKILL'), delayMs);
      out += d;
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL')
        reject(new Error(`child exited by itself (code ${code}): ${err}${out.slice(-500)}`));
      else resolve({ lines: out.split('\n').slice(0, -1), code });
    });
  });
}

it(`survives ${KILLS} SIGKILLs without losing an acknowledged entry`, async () => {
  const seed = Number(process.env.STORAGE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`storage crash test: seed ${seed} (replay: STORAGE_CRASH_SEED=${seed})`);
  const rand = rng(seed);
  const dir = dirs.make();
  let model: Model = { base: 0, terms: [], hardTerm: 0 };
  const started = Date.now();
  let kills = 0;
  let acked = 0;
  let withInFlight = 0;
  for (; kills < KILLS && Date.now() - started < BUDGET_MS; kills++) {
    const ctx = `seed ${seed}, kill ${kills + 1}`;
    const { lines } = await runAndKill(dir, (seed + kills * 7919) >>> 0, Math.floor(rand() * 120));
    let pending: Op | undefined;
    for (const line of lines) {
      const [tag, a, b, c] = line.split(' ');
      if (tag === 'P') pending = { first: Number(a), last: Number(b), term: Number(c) };
      else if (tag === 'A') {
        const op = { first: Number(a), last: Number(b), term: Number(c) };
        expect(op, ctx).toEqual(pending);
        model = applyOp(model, op);
        pending = undefined;
        acked += op.last - op.first + 1;
      } else if (tag === 'S') {
        const to = Number(b);
        if (to > model.base) model = { ...model, base: to, terms: model.terms.slice(to - model.base) };
      }
    }

    // Reopen in this process (the child's lock is stale now) and check.
    const s = await FileStorage.open(dir, { segmentSize: 64 * 1024, onFailure: () => undefined });
    try {
      const first = s.firstIndex();
      const last = s.lastIndex();
      expect(first, ctx).toBeGreaterThanOrEqual(model.base + 1);
      const got: Term[] = [];
      const es = s.entries(first, last + 1, Infinity);
      expect(es.length, ctx).toBe(last - first + 1);
      for (const e of es) {
        // Intact: the bytes are exactly those written for (index, term).
        const want = entryData(e.index, e.term);
        if (!Buffer.from(e.data).equals(Buffer.from(want)))
          throw new Error(`${ctx}: entry ${e.index} damaged`);
        got.push(e.term);
      }
      const view = (m: Model): Term[] => m.terms.slice(Math.max(0, first - m.base - 1));
      const asAcked = view(model);
      const candidates = [asAcked];
      if (pending !== undefined) candidates.push(view(applyOp(model, pending)));
      const match = candidates.findIndex((c) => c.length === got.length && c.every((t, k) => t === got[k]));
      if (match < 0) {
        throw new Error(
          `${ctx}: recovered log [${first}..${last}] terms ${got.slice(-8).join(',')} ` +
            `matches neither the acknowledged log (last ${model.base + model.terms.length}) nor it plus the write in flight`,
        );
      }
      if (match === 1) withInFlight++;
      const hs = s.initialState().hardState;
      expect(hs.term, ctx).toBeGreaterThanOrEqual(model.hardTerm);
      // Continue from what was recovered.
      model = {
        base: first - 1,
        terms: got,
        hardTerm: hs.term,
      };
    } finally {
      await s.close();
    }
  }
  console.log(
    `storage crash test: ${kills} kills in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
      `${acked} entries acknowledged, ${withInFlight} recoveries included the write in flight`,
  );
  expect(kills).toBeGreaterThanOrEqual(Math.min(KILLS, 50));
}, 90_000);
