import {
  EMPTY_CONF,
  EMPTY_HARD_STATE,
  entrySize,
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type Snapshot,
  type SnapshotMeta,
  type Term,
} from '../core/messages.js';
import { RaftError } from '../errors.js';
import {
  SNAPSHOT_CHUNK_BYTES,
  collectSnapshotData,
  concatBytes,
  type ReceivedSnapshot,
  type SnapshotReader,
  type SnapshotReceiver,
  type SnapshotToSave,
  type Storage,
  type StorageUpdate,
} from './storage.js';
import { TentativeLog, type LogView } from './tentative-log.js';

/** The durable state of a {@link MemoryStorage}, as `dump()` gives it and `from()` takes it. */
export interface MemoryStorageState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  /** The log after the compaction point `base`, in index order. */
  readonly entries: readonly Entry[];
  /** The compaction point (firstIndex - 1) and its term; defaults to the snapshot's. */
  readonly base?: { readonly index: Index; readonly term: Term };
}

/** Options of the {@link MemoryStorage} constructor: start from a given state. */
export interface MemoryStorageOptions {
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  readonly entries?: readonly Entry[];
  /** Membership when no snapshot is given (bootstrap). */
  readonly conf?: ConfState;
}

/** Snapshot bytes received into a MemoryStorage. */
class MemoryReceivedSnapshot implements ReceivedSnapshot {
  constructor(
    readonly owner: MemoryStorage,
    readonly meta: SnapshotMeta,
    readonly data: Uint8Array,
  ) {}
  get size(): number {
    return this.data.byteLength;
  }
  discard(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The in-memory twin of FileStorage, for unit tests and the deterministic simulator: the same
 * contract and the same conformance suite, no I/O. `save()` applies synchronously before it
 * returns (the promise is already settled), and the `append` / `setHardState` /
 * `applySnapshot` / `compact` methods do the same for callers that cannot await.
 *
 * "Durable" here means "in this object": to model a crash, `dump()` what was persisted and
 * build a new storage `from()` it.
 *
 * @example
 * const s = new MemoryStorage({ conf: { voters: ['n1', 'n2', 'n3'], outgoing: [], learners: [], learnersNext: [] } });
 * s.append([{ index: 1, term: 1, type: 'normal', data: new Uint8Array() }]);
 */
export class MemoryStorage implements Storage {
  private hs: HardState;
  private snap: Snapshot;
  private baseIndex: Index;
  private baseTerm: Term;
  /** ents[k] has index baseIndex + 1 + k. */
  private ents: Entry[];
  private failure: RaftError | undefined;
  private closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    this.hs = options.hardState ?? EMPTY_HARD_STATE;
    this.snap = options.snapshot ?? {
      meta: { index: 0, term: 0, conf: options.conf ?? EMPTY_CONF },
      data: new Uint8Array(0),
    };
    this.baseIndex = this.snap.meta.index;
    this.baseTerm = this.snap.meta.term;
    this.ents = [];
    if (options.entries !== undefined) this.append(options.entries);
  }

  /** A storage holding exactly `state` (e.g. what survived a simulated crash). */
  static from(state: MemoryStorageState): MemoryStorage {
    const s = new MemoryStorage({ hardState: state.hardState, snapshot: state.snapshot });
    if (state.base !== undefined) {
      s.baseIndex = state.base.index;
      s.baseTerm = state.base.term;
    }
    s.ents = [];
    s.append(state.entries);
    return s;
  }

  /** A copy of the durable state (entries are shared: they are immutable). */
  dump(): MemoryStorageState {
    return {
      hardState: this.hs,
      snapshot: this.snap,
      entries: this.ents.slice(),
      base: { index: this.baseIndex, term: this.baseTerm },
    };
  }

  // ---- LogStorage --------------------------------------------------------------------------

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hs, confState: this.snap.meta.conf };
  }

  firstIndex(): Index {
    return this.baseIndex + 1;
  }

  lastIndex(): Index {
    return this.baseIndex + this.ents.length;
  }

  term(index: Index): Term {
    if (index < this.baseIndex) {
      throw new RaftError('COMPACTED', `term(${index}): compacted; the log starts after ${this.baseIndex}`);
    }
    if (index === this.baseIndex) return this.baseTerm;
    const e = this.ents[index - this.baseIndex - 1];
    if (e === undefined)
      throw new RaftError('UNAVAILABLE', `term(${index}): the log ends at ${this.lastIndex()}`);
    return e.term;
  }

  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    if (lo <= this.baseIndex) {
      throw new RaftError(
        'COMPACTED',
        `entries(${lo}, ${hi}): compacted; the log starts at ${this.baseIndex + 1}`,
      );
    }
    if (hi > this.lastIndex() + 1) {
      throw new RaftError('UNAVAILABLE', `entries(${lo}, ${hi}): the log ends at ${this.lastIndex()}`);
    }
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - this.baseIndex - 1]!;
      const size = entrySize(e);
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(e);
      bytes += size;
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** All retained entries, in order (for tests). */
  allEntries(): Entry[] {
    return this.ents.slice();
  }

  /** The current hard state (for tests; the core reads it once through `initialState`). */
  hardStateNow(): HardState {
    return this.hs;
  }

  // ---- synchronous writes (for the simulator) ---------------------------------------------

  private view(): LogView {
    return { base: this.baseIndex, last: this.lastIndex(), term: (i) => this.term(i) };
  }

  private checkWritable(): void {
    if (this.closed) throw new RaftError('STOPPED', 'storage is closed');
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Append entries; one at or below the last index truncates the log there first (§5.3).
   * Entries already compacted are skipped. Throws `INVARIANT` on a gap or unordered input.
   */
  append(entries: readonly Entry[]): void {
    this.checkWritable();
    const es = new TentativeLog(this.view()).accept(entries);
    if (es.length === 0) return;
    const at = es[0]!.index - this.baseIndex - 1;
    this.ents.length = at;
    for (const e of es) this.ents.push(e);
  }

  /** Replace the hard state. */
  setHardState(hs: HardState): void {
    this.checkWritable();
    if (hs.term < this.hs.term) {
      throw new RaftError('INVARIANT', `hard state term ${hs.term} is below the stored ${this.hs.term}`);
    }
    this.hs = { term: hs.term, vote: hs.vote, commit: Math.max(hs.commit, this.hs.commit) };
  }

  /**
   * Install a snapshot received from the leader: if the log holds the snapshot's index with
   * the same term the entries after it are kept, otherwise the whole log is dropped.
   * A snapshot no newer than the current one is ignored.
   */
  applySnapshot(snapshot: Snapshot): void {
    this.checkWritable();
    const m = snapshot.meta;
    if (m.index <= this.snap.meta.index) return;
    const keep = m.index >= this.baseIndex && m.index <= this.lastIndex() && this.term(m.index) === m.term;
    this.ents = keep ? this.ents.slice(m.index - this.baseIndex) : [];
    this.baseIndex = m.index;
    this.baseTerm = m.term;
    this.snap = snapshot;
  }

  /** Drop entries at or below `index` (no-op at or below the current compaction point). */
  compact(index: Index): void {
    this.checkWritable();
    if (index <= this.baseIndex) return;
    if (index > this.lastIndex()) {
      throw new RaftError('INVARIANT', `compact(${index}) is beyond the last index ${this.lastIndex()}`);
    }
    const term = this.term(index);
    this.ents = this.ents.slice(index - this.baseIndex);
    this.baseIndex = index;
    this.baseTerm = term;
  }

  /**
   * Record the state machine's snapshot (at an index in the log), then compact to `compactTo`
   * (default and maximum: the snapshot's index). A snapshot no newer than the current one is
   * not recorded, but the compaction still happens.
   */
  createSnapshot(snapshot: Snapshot, compactTo?: Index): void {
    this.checkWritable();
    const m = snapshot.meta;
    const to = Math.min(compactTo ?? m.index, m.index);
    if (m.index <= this.snap.meta.index) {
      this.compact(to);
      return;
    }
    if (m.index > this.lastIndex()) {
      throw new RaftError(
        'INVARIANT',
        `snapshot at ${m.index} is beyond the last log index ${this.lastIndex()}`,
      );
    }
    if (this.term(m.index) !== m.term) {
      throw new RaftError(
        'INVARIANT',
        `snapshot term ${m.term} differs from the log's term ${this.term(m.index)} at ${m.index}`,
      );
    }
    this.snap = snapshot;
    this.compact(to);
  }

  /**
   * Test hook: make every later write fail as a disk error would (fail-stop).
   * @internal
   */
  failWrites(reason = 'injected failure'): void {
    this.failure ??= new RaftError(
      'STORAGE_FAILED',
      `durable write failed: ${reason}; refusing every further write (fail-stop)`,
    );
  }

  // ---- Storage -----------------------------------------------------------------------------

  save(update: StorageUpdate): Promise<void> {
    try {
      this.checkWritable();
      if (update.received !== undefined) {
        const r = update.received;
        if (!(r instanceof MemoryReceivedSnapshot) || r.owner !== this) {
          throw new RaftError('INVARIANT', 'received snapshot bytes belong to another storage');
        }
        const sn = update.snapshot;
        if (sn === undefined || sn.meta.index !== r.meta.index || sn.meta.term !== r.meta.term) {
          throw new RaftError('INVARIANT', 'received snapshot bytes do not match the snapshot saved');
        }
        return this.save({ ...update, snapshot: { meta: sn.meta, data: r.data }, received: undefined });
      }
      // Validate everything before changing anything, so a rejected save changes nothing.
      if (update.hardState !== undefined && update.hardState.term < this.hs.term) {
        throw new RaftError(
          'INVARIANT',
          `hard state term ${update.hardState.term} is below the stored ${this.hs.term}`,
        );
      }
      const before = this.dump();
      const beforeSnap = this.snap;
      try {
        if (update.snapshot !== undefined) this.applySnapshot(update.snapshot);
        this.append(update.entries);
      } catch (e) {
        this.snap = beforeSnap;
        this.baseIndex = before.base!.index;
        this.baseTerm = before.base!.term;
        this.ents = before.entries as Entry[];
        throw e;
      }
      if (update.hardState !== undefined) this.setHardState(update.hardState);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  saveSnapshot(snapshot: SnapshotToSave, compactTo?: Index): Promise<void> {
    const data = snapshot.data;
    if (data instanceof Uint8Array) {
      try {
        this.createSnapshot({ meta: snapshot.meta, data }, compactTo);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    // A stream: collect it (appends may happen meanwhile, as with FileStorage), then record.
    return collectSnapshotData(data).then((bytes) => {
      this.createSnapshot({ meta: snapshot.meta, data: bytes }, compactTo);
    });
  }

  readSnapshot(chunkSize = SNAPSHOT_CHUNK_BYTES): SnapshotReader {
    const snap = this.snap;
    return {
      meta: snap.meta,
      size: snap.data.byteLength,
      chunks: {
        async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
          const d = snap.data;
          for (let o = 0; o < d.byteLength; o += chunkSize) {
            yield d.subarray(o, Math.min(d.byteLength, o + chunkSize));
          }
        },
      },
      close: () => undefined,
    };
  }

  receiveSnapshot(meta: SnapshotMeta): SnapshotReceiver {
    const parts: Uint8Array[] = [];
    let done = false;
    return {
      write: (chunk) => {
        if (done) return Promise.reject(new RaftError('INVARIANT', 'write after finish or abort'));
        parts.push(chunk.slice());
        return Promise.resolve();
      },
      finish: () => {
        if (done) {
          return Promise.reject(new RaftError('STOPPED', 'the snapshot receiver was aborted or finished'));
        }
        done = true;
        return Promise.resolve(new MemoryReceivedSnapshot(this, meta, concatBytes(parts)));
      },
      abort: () => {
        done = true;
        parts.length = 0;
        return Promise.resolve();
      },
    };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
