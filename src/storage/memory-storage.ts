import { RaftError } from '../errors.js';
import {
  EMPTY_CONF,
  EMPTY_HARD_STATE,
  entrySize,
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type Snapshot,
  type Term,
} from '../core/messages.js';
import type { Storage, StorageUpdate } from './storage.js';

/**
 * The in-memory twin of the file store: the same contract, nothing durable. Used by the
 * simulator (which calls the synchronous `append` / `setHardState` / `applySnapshot` /
 * `compact` directly, since it cannot await) and by unit tests.
 *
 * Layout: `ents[0]` is a dummy entry at the snapshot's index and term; real entries follow.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState;
  private snap: Snapshot;
  private ents: Entry[];
  private closed = false;

  constructor(init: { conf?: ConfState; hardState?: HardState; snapshot?: Snapshot; entries?: Entry[] } = {}) {
    this.hardState = init.hardState ?? EMPTY_HARD_STATE;
    this.snap = init.snapshot ?? {
      meta: { index: 0, term: 0, conf: init.conf ?? EMPTY_CONF },
      data: new Uint8Array(0),
    };
    this.ents = [{ index: this.snap.meta.index, term: this.snap.meta.term, type: 'normal', data: new Uint8Array(0) }];
    if (init.entries && init.entries.length > 0) this.append(init.entries);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.meta.conf };
  }

  private offset(): Index {
    return this.ents[0]!.index;
  }

  firstIndex(): Index {
    return this.offset() + 1;
  }

  lastIndex(): Index {
    return this.offset() + this.ents.length - 1;
  }

  term(i: Index): Term {
    const off = this.offset();
    if (i < off) throw new RaftError('COMPACTED', `index ${i} is compacted (first is ${off + 1})`);
    const e = this.ents[i - off];
    if (!e) throw new RaftError('UNAVAILABLE', `index ${i} is beyond the last index ${this.lastIndex()}`);
    return e.term;
  }

  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new RaftError('COMPACTED', `index ${lo} is compacted (first is ${off + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError('UNAVAILABLE', `index ${hi - 1} is beyond the last index ${this.lastIndex()}`);
    }
    if (lo >= hi) return [];
    const out: Entry[] = [this.ents[lo - off]!];
    let size = entrySize(out[0]!);
    for (let i = lo + 1; i < hi; i++) {
      const e = this.ents[i - off]!;
      size += entrySize(e);
      if (size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** All retained entries (for tests). */
  allEntries(): Entry[] {
    return this.ents.slice(1);
  }

  hardStateNow(): HardState {
    return this.hardState;
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /**
   * Appends entries; an entry whose index is already present truncates that index and
   * everything after it first (§5.3). Entries at or below the snapshot are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let ents = entries;
    if (ents[ents.length - 1]!.index < first) return;
    if (ents[0]!.index < first) ents = ents.slice(first - ents[0]!.index);
    const from = ents[0]!.index;
    if (from > this.lastIndex() + 1) {
      throw new RaftError('BAD_REQUEST', `append at ${from} leaves a gap after ${this.lastIndex()}`);
    }
    this.ents.length = from - this.offset();
    for (const e of ents) this.ents.push(e);
  }

  /**
   * Installs a snapshot received from the leader: if the log has the snapshot's last entry
   * (same term), the suffix after it is kept; otherwise the whole log is replaced.
   */
  applySnapshot(s: Snapshot): void {
    const idx = s.meta.index;
    if (idx <= this.snap.meta.index) return;
    const dummy: Entry = { index: idx, term: s.meta.term, type: 'normal', data: new Uint8Array(0) };
    let rest: Entry[] = [];
    if (idx <= this.lastIndex() && this.term(idx) === s.meta.term) rest = this.ents.slice(idx - this.offset() + 1);
    this.ents = [dummy, ...rest];
    this.snap = s;
  }

  /** Drops entries at or below `index` (they are covered by a snapshot). */
  compact(index: Index): void {
    const off = this.offset();
    if (index <= off) return;
    if (index > this.lastIndex()) {
      throw new RaftError('BAD_REQUEST', `compact ${index} is beyond the last index ${this.lastIndex()}`);
    }
    const t = this.ents[index - off]!.term;
    this.ents = [{ index, term: t, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(index - off + 1)];
  }

  /** Records a snapshot the state machine took at an index within the log. */
  createSnapshot(s: Snapshot): void {
    if (s.meta.index <= this.snap.meta.index) return;
    if (s.meta.index > this.lastIndex()) {
      throw new RaftError('BAD_REQUEST', `snapshot ${s.meta.index} is beyond the last index ${this.lastIndex()}`);
    }
    this.snap = s;
  }

  save(update: StorageUpdate): Promise<void> {
    if (this.closed) return Promise.reject(new RaftError('STOPPED', 'storage is closed'));
    if (update.snapshot) this.applySnapshot(update.snapshot);
    if (update.entries.length > 0) this.append(update.entries);
    if (update.hardState) this.setHardState(update.hardState);
    return Promise.resolve();
  }

  saveSnapshot(snapshot: Snapshot, compactTo?: Index): Promise<void> {
    if (this.closed) return Promise.reject(new RaftError('STOPPED', 'storage is closed'));
    this.createSnapshot(snapshot);
    this.compact(Math.min(compactTo ?? snapshot.meta.index, snapshot.meta.index));
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
