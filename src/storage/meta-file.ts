import type { ConfState, HardState, Index, SnapshotMeta, Term } from '../core/messages.js';
import { CorruptionError } from '../errors.js';
import { decodeCheckedFile, encodeCheckedFile, writeFileAtomic } from './atomic-file.js';
import type { StorageFs } from './fs.js';

/** File name of the meta file inside the data directory. */
export const META_FILE = 'meta';
const META_MAGIC = 'TSRFMETA';
/** Format version of the meta file. */
export const META_VERSION = 1;

/** Where the current snapshot lives and how to check it. */
export interface SnapshotRef {
  readonly meta: SnapshotMeta;
  /** File name inside `snap/`; `undefined` for the initial empty snapshot (index 0). */
  readonly file: string | undefined;
  /** Data bytes and their CRC-32, checked again on open. */
  readonly size: number;
  readonly crc: number;
}

/**
 * Everything that is replaced atomically rather than appended: the hard state's term and vote
 * (written when they change, i.e. on elections), the commit index as of that write, the
 * current snapshot, and the log's compaction point `base` (firstIndex - 1 and its term).
 * The commit index also advances through COMMIT records in the WAL; on open the larger wins.
 */
export interface MetaState {
  readonly hardState: HardState;
  readonly snapshot: SnapshotRef;
  readonly base: { readonly index: Index; readonly term: Term };
}

interface MetaJson {
  term: number;
  vote: string | null;
  commit: number;
  snapshot: { index: number; term: number; conf: ConfState; file: string | null; size: number; crc: number };
  base: { index: number; term: number };
}

/** Serialize `m` into the bytes of a meta file (header with version and checksum, JSON body). */
export function encodeMeta(m: MetaState): Buffer {
  const json: MetaJson = {
    term: m.hardState.term,
    vote: m.hardState.vote ?? null,
    commit: m.hardState.commit,
    snapshot: {
      index: m.snapshot.meta.index,
      term: m.snapshot.meta.term,
      conf: m.snapshot.meta.conf,
      file: m.snapshot.file ?? null,
      size: m.snapshot.size,
      crc: m.snapshot.crc,
    },
    base: { index: m.base.index, term: m.base.term },
  };
  return encodeCheckedFile(META_MAGIC, META_VERSION, Buffer.from(JSON.stringify(json), 'utf8'));
}

function isNat(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function isNames(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((s) => typeof s === 'string');
}

/** Parse and check a meta file; throws CorruptionError naming `file` if it is damaged. */
export function decodeMeta(file: string, buf: Buffer): MetaState {
  const body = decodeCheckedFile(file, buf, META_MAGIC, META_VERSION);
  let j: MetaJson;
  try {
    j = JSON.parse(body.toString('utf8')) as MetaJson;
  } catch {
    throw new CorruptionError(file, 24, 'body is not valid JSON');
  }
  const s = j?.snapshot;
  const c = s?.conf;
  const ok =
    isNat(j.term) &&
    (j.vote === null || typeof j.vote === 'string') &&
    isNat(j.commit) &&
    isNat(s?.index) &&
    isNat(s.term) &&
    (s.file === null || typeof s.file === 'string') &&
    isNat(s.size) &&
    isNat(s.crc) &&
    isNames(c?.voters) &&
    isNames(c.outgoing) &&
    isNames(c.learners) &&
    isNames(c.learnersNext) &&
    isNat(j.base?.index) &&
    isNat(j.base.term);
  if (!ok) throw new CorruptionError(file, 24, 'body does not describe a valid state');
  return {
    hardState: { term: j.term, vote: j.vote ?? undefined, commit: j.commit },
    snapshot: {
      meta: {
        index: s.index,
        term: s.term,
        conf: { voters: c.voters, outgoing: c.outgoing, learners: c.learners, learnersNext: c.learnersNext },
      },
      file: s.file ?? undefined,
      size: s.size,
      crc: s.crc,
    },
    base: { index: j.base.index, term: j.base.term },
  };
}

/** Write the meta file atomically (temp file, fsync, rename, fsync the directory). */
export async function writeMeta(sfs: StorageFs, dir: string, m: MetaState): Promise<void> {
  await writeFileAtomic(sfs, dir, META_FILE, encodeMeta(m));
}
