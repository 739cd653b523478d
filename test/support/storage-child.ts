/**
 * A child process for the storage tests that need a real, separate process.
 *
 *   hold <dir>                      open the storage, print "ready", hold it until stdin closes
 *   append <dir> <seed> <segBytes>  append batches forever (see test/integration/storage-crash.test.ts)
 *
 * In `append` mode every save is announced before it starts (`P first last term`) and
 * acknowledged right after it resolves, i.e. after its sync returned (`A first last term`);
 * `S index compactTo` follows a snapshot. stdout is a pipe, and pipe writes are synchronous
 * on Linux, so a line printed before a SIGKILL reaches the parent.
 */
import { FileStorage } from '../../src/storage/file-storage.js';
import type { Entry } from '../../src/core/messages.js';
import { entryData } from './crash-data.js';

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

async function hold(dir: string): Promise<void> {
  const s = await FileStorage.open(dir);
  out('ready');
  process.stdin.resume();
  process.stdin.on('end', () => {
    void s.close().then(() => process.exit(0));
  });
}

async function append(dir: string, seed: number, segmentSize: number): Promise<void> {
  const rand = rng(seed);
  const s = await FileStorage.open(dir, {
    segmentSize,
    io: rand() < 0.7 ? 'sync' : 'async',
    syncMethod: rand() < 0.7 ? 'dsync' : 'fdatasync',
    onFailure: (e) => {
      out(`F ${e.message}`);
      process.exit(3);
    },
  });
  let hs = s.initialState().hardState;
  out(`ready ${s.firstIndex()} ${s.lastIndex()}`);
  for (;;) {
    const first = s.firstIndex();
    const last = s.lastIndex();
    const r = rand();
    if (hs.term === 0 || (r < 0.04 && last >= first + 3)) {
      // A new term that truncates a short suffix (§5.3): meta file first, then the WAL.
      const from = hs.term === 0 ? last + 1 : last - Math.floor(rand() * 3);
      const term = hs.term + 1;
      const n = 1 + Math.floor(rand() * 5);
      const entries: Entry[] = [];
      for (let i = from; i < from + n; i++)
        entries.push({ index: i, term, type: 'normal', data: entryData(i, term) });
      hs = { term, vote: 'n1', commit: Math.min(hs.commit, from - 1) };
      out(`P ${from} ${from + n - 1} ${term}`);
      await s.save({ hardState: hs, entries });
      out(`A ${from} ${from + n - 1} ${term}`);
    } else if (r < 0.06 && last - first > 60) {
      const at = last - 10;
      await s.saveSnapshot(
        { meta: { index: at, term: s.term(at), conf: CONF }, data: entryData(at, 99) },
        at - 20,
      );
      out(`S ${at} ${at - 20}`);
    } else {
      const n = rand() < 0.05 ? 100 + Math.floor(rand() * 200) : 1 + Math.floor(rand() * 16);
      const entries: Entry[] = [];
      for (let i = last + 1; i <= last + n; i++) {
        entries.push({ index: i, term: hs.term, type: 'normal', data: entryData(i, hs.term) });
      }
      hs = { term: hs.term, vote: hs.vote, commit: last };
      out(`P ${last + 1} ${last + n} ${hs.term}`);
      await s.save({ hardState: hs, entries });
      out(`A ${last + 1} ${last + n} ${hs.term}`);
    }
  }
}

const [mode, dir, a, b] = process.argv.slice(2);
if (mode === 'hold' && dir !== undefined) await hold(dir);
else if (mode === 'append' && dir !== undefined) await append(dir, Number(a), Number(b));
else {
  console.error('usage: storage-child hold <dir> | append <dir> <seed> <segmentBytes>');
  process.exit(2);
}
