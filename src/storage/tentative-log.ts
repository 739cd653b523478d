import type { Entry, Index, Term } from '../core/messages.js';
import { RaftError } from '../errors.js';

/** The log as a write will find it: its compaction point, last index and terms. */
export interface LogView {
  readonly base: Index;
  readonly last: Index;
  /** Term of `i`, for `base <= i <= last`. */
  term(i: Index): Term;
}

/**
 * Checks a sequence of appends against a log without changing it, the way they will apply:
 * entries must be contiguous with non-decreasing terms, may not leave a gap after the last
 * index, and an entry at or below the last index truncates the log there first (§5.3).
 * Entries at or below the compaction point are already covered by the snapshot and are
 * skipped. Shared by both Storage implementations so they agree on every edge.
 */
export class TentativeLog {
  private cut: Index;
  private pending: Entry[] = [];

  constructor(private readonly view: LogView) {
    this.cut = view.last;
  }

  get last(): Index {
    return this.cut + this.pending.length;
  }

  private termAt(i: Index): Term {
    return i > this.cut ? this.pending[i - this.cut - 1]!.term : this.view.term(i);
  }

  /**
   * Accept `entries` or throw `RaftError('INVARIANT')` (a caller bug: nothing is written).
   * Returns the entries that will actually be written.
   */
  accept(entries: readonly Entry[]): readonly Entry[] {
    const n = entries.length;
    if (n === 0) return entries;
    const f0 = entries[0]!.index;
    for (let k = 1; k < n; k++) {
      const e = entries[k]!;
      if (e.index !== f0 + k) {
        throw new RaftError(
          'INVARIANT',
          `entries to append are not contiguous: ${f0 + k - 1} is followed by ${e.index}`,
        );
      }
      if (e.term < entries[k - 1]!.term) {
        throw new RaftError('INVARIANT', `entries to append go back in term at index ${e.index}`);
      }
    }
    let es = entries;
    const first = this.view.base + 1;
    if (f0 < first) {
      if (f0 + n - 1 < first) return [];
      es = entries.slice(first - f0);
    }
    const f = es[0]!.index;
    if (f > this.last + 1) {
      throw new RaftError('INVARIANT', `entries start at index ${f} but the log ends at ${this.last}: a gap`);
    }
    const prev = this.termAt(f - 1);
    if (es[0]!.term < prev) {
      throw new RaftError(
        'INVARIANT',
        `entry ${f} has term ${es[0]!.term}, below the term ${prev} of entry ${f - 1}`,
      );
    }
    if (f <= this.cut) {
      this.cut = f - 1;
      this.pending = es.slice();
    } else {
      this.pending.length = f - this.cut - 1;
      for (const e of es) this.pending.push(e);
    }
    return es;
  }
}
