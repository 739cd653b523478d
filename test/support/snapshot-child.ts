/**
 * A child process for the snapshot crash test (test/integration/snapshot-crash.test.ts):
 *
 *   run <dir> <seed>    forever: install a leader's snapshot received in chunks, take a local
 *                       snapshot from a stream and compact, or append entries
 *
 * Every operation is announced before it starts (`P <kind> ...`) and acknowledged once it
 * resolved, i.e. once it is durable (`A <kind> ...`); kinds: `I index term` (install),
 * `S index term` (local snapshot), `E first last term` (entries). stdout is a pipe and pipe
 * writes are synchronous on Linux, so a line printed before a SIGKILL reaches the parent.
 */
import type { Entry } from '../../src/core/messages.js';
import { FileStorage } from '../../src/storage/file-storage.js';
import { snapshotBytes, snapshotSize } from './snapshot-crash-data.js';

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

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const CONF = { voters: ['n1', 'n2', 'n3'], outgoing: [], learners: [], learnersNext: [] };
const CHUNK = 64 * 1024;

async function* chunks(index: number, term: number): AsyncGenerator<Uint8Array> {
  const size = snapshotSize(index);
  for (let o = 0; o < size; o += CHUNK) yield snapshotBytes(index, term, o, Math.min(size, o + CHUNK));
}

async function run(dir: string, seed: number): Promise<void> {
  const rand = rng(seed);
  const s = await FileStorage.open(dir, {
    segmentSize: 64 * 1024,
    io: rand() < 0.5 ? 'sync' : 'async',
    onFailure: (e) => {
      out(`F ${e.message}`);
      process.exit(3);
    },
  });
  let hs = s.initialState().hardState;
  let term = Math.max(1, hs.term);
  out(`ready ${s.snapshot().meta.index} ${s.lastIndex()}`);
  for (;;) {
    const r = rand();
    const last = s.lastIndex();
    const snap = s.snapshot().meta.index;
    if (r < 0.25) {
      // A leader's snapshot beyond our log, of a newer term: received in chunks, then installed.
      term++;
      const index = last + 5 + Math.floor(rand() * 50);
      const meta = { index, term, conf: CONF };
      out(`P I ${index} ${term}`);
      const rx = s.receiveSnapshot(meta);
      for await (const c of chunks(index, term)) await rx.write(c);
      const received = await rx.finish();
      hs = { term, vote: undefined, commit: index };
      await s.save({ hardState: hs, entries: [], snapshot: { meta, data: new Uint8Array(0) }, received });
      out(`A I ${index} ${term}`);
    } else if (r < 0.4 && last > snap + 5) {
      // A local snapshot of committed state, streamed, keeping a margin of 3 entries.
      const index = last - 2;
      const t = s.term(index);
      if (hs.commit < index) {
        hs = { term: hs.term, vote: hs.vote, commit: index };
        await s.save({ hardState: hs, entries: [] });
      }
      out(`P S ${index} ${t}`);
      await s.saveSnapshot({ meta: { index, term: t, conf: CONF }, data: chunks(index, t) }, index - 3);
      out(`A S ${index} ${t}`);
    } else {
      if (hs.term < term) {
        hs = { term, vote: 'n1', commit: hs.commit };
        await s.save({ hardState: hs, entries: [] });
      }
      const n = 1 + Math.floor(rand() * 20);
      const entries: Entry[] = [];
      for (let i = last + 1; i <= last + n; i++) {
        entries.push({ index: i, term, type: 'normal', data: new Uint8Array([i & 0xff, term & 0xff]) });
      }
      out(`P E ${last + 1} ${last + n} ${term}`);
      await s.save({ entries });
      out(`A E ${last + 1} ${last + n} ${term}`);
    }
  }
}

const [mode, dir, seed] = process.argv.slice(2);
if (mode === 'run' && dir !== undefined) await run(dir, Number(seed));
else {
  console.error('usage: snapshot-child run <dir> <seed>');
  process.exit(2);
}
