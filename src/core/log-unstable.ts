import { invariant } from './invariant.js';
import type { Entry, Index, Snapshot, Term } from './messages.js';

/**
 * The tail of the log that is not yet durable: entries (and possibly an incoming snapshot)
 * the core has accepted but the node has not persisted. Once a `Ready` batch is persisted,
 * `stableTo` drops what it carried, so storage becomes the source of truth for it.
 *
 * Invariant: `entries[i].index === offset + i`; with a snapshot, `offset === snapshot.index + 1`.
 */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: Index;

  constructor(offset: Index) {
    this.offset = offset;
  }

  /** The first index, only if a pending snapshot defines it. */
  maybeFirstIndex(): Index | undefined {
    return this.snapshot ? this.snapshot.meta.index + 1 : undefined;
  }

  /** The last index, if the unstable part holds any entry or snapshot. */
  maybeLastIndex(): Index | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.meta.index : undefined;
  }

  /** The term of `i` if the unstable part knows it. */
  maybeTerm(i: Index): Term | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e?.term;
  }

  /** Entries up to `i` at term `t` are now durable. Ignored if `i` was since overwritten. */
  stableTo(i: Index, t: Term): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    const n = i + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = i + 1;
  }

  /** The pending snapshot at `i` is now durable. */
  stableSnapTo(i: Index): void {
    if (this.snapshot && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  /** Replaces everything with an incoming snapshot (§7). */
  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /**
   * Appends `ents`, truncating first whatever conflicts: entries at or after `ents[0].index`
   * are replaced (§5.3). The caller guarantees `ents[0].index` is at most lastIndex + 1.
   */
  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      // Replaces the whole unstable tail (and storage's suffix from `from` on persist).
      this.offset = from;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, from - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  /** Entries in `[lo, hi)`; the range must lie inside the unstable part. */
  slice(lo: Index, hi: Index): Entry[] {
    invariant(
      lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi,
      () => `unstable.slice[${lo},${hi}) out of bounds [${this.offset},${this.offset + this.entries.length})`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
