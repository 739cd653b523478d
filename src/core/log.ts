import { RaftError, isRaftError } from '../errors.js';
import { invariant } from './invariant.js';
import type { LogStorage } from './log-storage.js';
import { Unstable } from './log-unstable.js';
import { entrySize, type Entry, type Index, type Snapshot, type Term } from './messages.js';

/**
 * The core's whole log: durable entries read through {@link LogStorage} followed by the
 * {@link Unstable} tail, plus the commit and apply watermarks.
 *
 * Invariants: `applied <= applying <= committed <= lastIndex()`; entries up to `committed`
 * never change (State Machine Safety rests on it).
 */
export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known committed (§5.3). */
  committed: Index;
  /** Highest index handed to the application in a `Ready` (may not be applied yet). */
  applying: Index;
  /** Highest index the application has applied. */
  applied: Index;

  constructor(
    readonly storage: LogStorage,
    readonly maxApplyingBytes: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): Index {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): Index {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The term at `i`, or `undefined` when `i` is compacted or beyond the log. Index 0 has term 0. */
  term(i: Index): Term | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return i === 0 ? 0 : undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isRaftError(e, 'COMPACTED') || isRaftError(e, 'UNAVAILABLE')) return undefined;
      throw e;
    }
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    invariant(t !== undefined, () => `term of last index ${this.lastIndex()} unknown`);
    return t;
  }

  matchTerm(i: Index, t: Term): boolean {
    const x = this.term(i);
    return x !== undefined && x === t;
  }

  /** §5.4.1: is a log ending at (`lastIndex`, `term`) at least as up to date as ours? */
  isUpToDate(lastIndex: Index, term: Term): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** The index of the first entry of `ents` whose term differs from ours (0 if none). */
  findConflict(ents: readonly Entry[]): Index {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index `<= index` whose term is `<= term`, with that term: the best guess of
   * where two logs may match, used for fast backtracking in both directions.
   */
  findConflictByTerm(index: Index, term: Term): { index: Index; term: Term } {
    let i = Math.min(index, this.lastIndex());
    for (; i >= 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * AppendEntries on a follower (§5.3): if our entry at `prevIndex` has `prevTerm`, append
   * `ents` (truncating a conflicting suffix, never a matching one: messages may be stale or
   * reordered) and advance commit. Returns the last index now known to match and the entries
   * actually written, or undefined when the consistency check fails.
   */
  maybeAppend(
    prevIndex: Index,
    prevTerm: Term,
    committed: Index,
    ents: readonly Entry[],
  ): { lastNew: Index; appended: readonly Entry[] } | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    let appended: readonly Entry[] = [];
    if (ci !== 0) {
      invariant(ci > this.committed, () => `conflict at ${ci} would overwrite committed ${this.committed}`);
      appended = ci === prevIndex + 1 ? ents : ents.slice(ci - (prevIndex + 1));
      this.append(appended);
    }
    this.commitTo(Math.min(committed, lastNew));
    return { lastNew, appended };
  }

  /** Appends `ents` to the unstable tail (truncating from `ents[0].index`). Returns the last index. */
  append(ents: readonly Entry[]): Index {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, () => `append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Moves commit forward to `i` (never backward). */
  commitTo(i: Index): void {
    if (i <= this.committed) return;
    invariant(i <= this.lastIndex(), () => `commit ${i} is beyond last index ${this.lastIndex()}`);
    this.committed = i;
  }

  /**
   * §5.4.2: commit `maxIndex` only if our entry there is from `term` (the leader's current
   * term). Returns whether commit moved.
   */
  maybeCommit(maxIndex: Index, term: Term): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Entries in `[lo, hi)`, at most `maxBytes` (but at least one). Throws COMPACTED below firstIndex. */
  slice(lo: Index, hi: Index, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new RaftError('COMPACTED', `index ${lo} is compacted (first is ${first})`);
    invariant(hi <= this.lastIndex() + 1, () => `slice hi ${hi} beyond last ${this.lastIndex()}`);
    const uOff = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < uOff) {
      out = this.storage.entries(lo, Math.min(hi, uOff), maxBytes);
      if (out.length < Math.min(hi, uOff) - lo) return out; // hit the byte limit
    }
    if (hi > uOff) {
      const u = this.unstable.slice(Math.max(lo, uOff), hi);
      if (out.length === 0) out = u;
      else for (const e of u) out.push(e);
    }
    return limitSize(out, maxBytes);
  }

  /** Entries from `i` to the end, at most `maxBytes`. */
  entriesFrom(i: Index, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** True when committed entries wait to be handed to the application. */
  hasNextCommittedEnts(): boolean {
    return this.committed > this.applying && this.unstable.snapshot === undefined;
  }

  /** The next committed entries to apply (at most `maxApplyingBytes`). */
  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    return this.slice(this.applying + 1, this.committed + 1, this.maxApplyingBytes);
  }

  /** The application received entries up to `i`. */
  applyingTo(i: Index): void {
    if (i > this.applying) this.applying = i;
  }

  /** The application applied up to `i`. */
  appliedTo(i: Index): void {
    if (i === 0) return;
    invariant(
      i <= this.committed && i >= this.applied,
      () => `applied ${i} out of range [${this.applied}, ${this.committed}]`,
    );
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  /** Installs a snapshot: the log becomes exactly the snapshot (§7). */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /** The newest snapshot: a pending incoming one, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}

/** Keeps a prefix of `ents` within `maxBytes`, always at least one entry. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
