import type { Index, Term } from '../../core/messages.js';

/** A contiguous range of entries stored back to back in one segment: `first .. first + n - 1`. */
interface Run<S> {
  readonly seg: S;
  readonly first: Index;
  offs: Uint32Array;
  n: number;
}

/**
 * Where every retained entry lives, and its term, in compact form: offsets in typed arrays per
 * segment run, terms as (start index, term) runs. A 1 GiB log of small entries costs a few
 * bytes per entry here; the bytes themselves stay on disk (or in the tail cache).
 *
 * Invariant: the runs cover exactly `(baseIndex, last]` in order (the first run may also
 * cover compacted indexes below `baseIndex + 1`; lookups never ask for them).
 */
export class LogIndex<S> {
  baseIndex: Index;
  baseTerm: Term;
  last: Index;
  private runs: Run<S>[] = [];
  private tStart: number[] = [];
  private tTerm: number[] = [];

  constructor(baseIndex: Index, baseTerm: Term) {
    this.baseIndex = baseIndex;
    this.baseTerm = baseTerm;
    this.last = baseIndex;
  }

  /** Number of live entries. */
  get size(): number {
    return this.last - this.baseIndex;
  }

  /** Term of `i`, for `baseIndex <= i <= last` (the caller checks the range). */
  term(i: Index): Term {
    if (i === this.baseIndex) return this.baseTerm;
    const s = this.tStart;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.tTerm[lo]!;
  }

  /** Term of `last`. */
  lastTerm(): Term {
    const n = this.tTerm.length;
    return n === 0 || this.last === this.baseIndex ? this.baseTerm : this.tTerm[n - 1]!;
  }

  /** Segment and byte offset of entry `i` (`baseIndex < i <= last`). */
  locate(i: Index): { seg: S; off: number } {
    const r = this.runs;
    let lo = 0;
    let hi = r.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (r[mid]!.first <= i) lo = mid;
      else hi = mid - 1;
    }
    const run = r[lo]!;
    return { seg: run.seg, off: run.offs[i - run.first]! };
  }

  /**
   * Record entry `i` (at most `last + 1`) of `term` at `seg`/`off`. An index at or below `last`
   * first truncates the log there (§5.3); one at or below `baseIndex` restarts it just below `i`.
   */
  put(i: Index, term: Term, seg: S, off: number): void {
    if (i <= this.baseIndex) this.reset(i - 1, 0);
    else if (i <= this.last) this.truncateFrom(i);
    const runs = this.runs;
    let run = runs[runs.length - 1];
    if (run === undefined || run.seg !== seg || run.first + run.n !== i) {
      run = { seg, first: i, offs: new Uint32Array(256), n: 0 };
      runs.push(run);
    } else if (run.n === run.offs.length) {
      const grown = new Uint32Array(run.offs.length * 2);
      grown.set(run.offs);
      run.offs = grown;
    }
    run.offs[run.n++] = off;
    const tl = this.tTerm.length;
    if (tl === 0 || this.tTerm[tl - 1] !== term) {
      this.tStart.push(i);
      this.tTerm.push(term);
    }
    this.last = i;
  }

  /** Drop entries `>= i` (`i > baseIndex`). */
  truncateFrom(i: Index): void {
    if (i > this.last) return;
    const runs = this.runs;
    while (runs.length > 0 && runs[runs.length - 1]!.first >= i) runs.pop();
    const run = runs[runs.length - 1];
    if (run !== undefined) run.n = Math.min(run.n, i - run.first);
    while (this.tStart.length > 0 && this.tStart[this.tStart.length - 1]! >= i) {
      this.tStart.pop();
      this.tTerm.pop();
    }
    this.last = i - 1;
  }

  /** Make the log empty, just after `index` of `term` (a snapshot replaced it). */
  reset(index: Index, term: Term): void {
    this.runs = [];
    this.tStart = [];
    this.tTerm = [];
    this.baseIndex = index;
    this.baseTerm = term;
    this.last = index;
  }

  /** Drop entries `<= to` (`baseIndex <= to <= last`), remembering the term of `to`. */
  compact(to: Index): void {
    if (to <= this.baseIndex) return;
    const term = this.term(to);
    const runs = this.runs;
    let k = 0;
    while (k < runs.length && runs[k]!.first + runs[k]!.n - 1 <= to) k++;
    if (k > 0) runs.splice(0, k);
    let t = 0;
    while (t + 1 < this.tStart.length && this.tStart[t + 1]! <= to + 1) t++;
    if (to === this.last) t = this.tStart.length;
    if (t > 0) {
      this.tStart.splice(0, t);
      this.tTerm.splice(0, t);
    }
    this.baseIndex = to;
    this.baseTerm = term;
  }

  /**
   * An index from which the entries up to `last` take roughly `bytes` on disk (judged by
   * record offsets), for filling a cache of that size.
   */
  tailStart(bytes: number): Index {
    let budget = bytes;
    for (let r = this.runs.length - 1; r >= 0; r--) {
      const run = this.runs[r]!;
      if (run.n === 0) continue;
      const lastOff = run.offs[run.n - 1]!;
      let lo = 0;
      let hi = run.n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (lastOff - run.offs[mid]! <= budget) hi = mid;
        else lo = mid + 1;
      }
      const span = lastOff - run.offs[lo]!;
      if (lo > 0 || span >= budget) return Math.max(this.baseIndex + 1, run.first + lo);
      budget -= span;
    }
    return this.baseIndex + 1;
  }

  /** Whether `seg` still holds an entry above `index` that is part of the log. */
  holdsAbove(seg: S, index: Index): boolean {
    for (const r of this.runs) {
      if (r.seg === seg && r.n > 0 && r.first + r.n - 1 > index) return true;
    }
    return false;
  }
}
