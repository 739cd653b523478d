import { Refusal, UNKNOWN, step, type KeyModel, type ModelOp, type RegisterState } from './model.js';

/**
 * The search for one key: Wing & Gong's algorithm with Lowe's cache, adapted to optional
 * operations (see linearizable.ts for the overview).
 *
 * @module
 */

export interface Budget {
  maxSteps: number;
  /** performance.now() after which to give up. */
  deadline: number;
  maxCacheBytes: number;
}

export interface SearchResult {
  valid: boolean | 'unknown';
  steps: number;
  budget?: 'steps' | 'time' | 'memory';
  /**
   * With `trace`: the first legal order found that linearizes the most required operations
   * (operation numbers), and the state it leaves.
   */
  deepest?: { order: number[]; state: RegisterState };
}

/**
 * Wing–Gong–Lowe over one key's operations (numbered 0..n-1). See the module doc.
 *
 * Exported for the checker and its tests (compared with brute force on small histories).
 */
export function search(input: readonly ModelOp[], km: KeyModel, budget: Budget, trace = false): SearchResult {
  // Local numbering: operations with a deadline first, in invoke order, then the
  // indeterminate ones. A linearized set is then mostly a run of ones followed by a few
  // scattered bits, which the cache stores compactly.
  const lazyRank = (o: ModelOp): number => (!o.required && o.complete === Infinity ? 1 : 0);
  const sorted = [...input].sort((a, b) => lazyRank(a) - lazyRank(b) || a.invoke - b.invoke || a.n - b.n);
  const ops = sorted.map((o, n) => (o.n === n ? o : { ...o, n }));
  const n = ops.length;
  let remaining = 0;
  for (const o of ops) if (o.required) remaining++;
  if (remaining === 0) return { valid: true, steps: 0 };
  const requiredTotal = remaining;

  // Entries: calls and (finite) returns, sorted by time, calls first on ties; entry e is the
  // e-th in that order, so "e1 < e2" is "e1 comes first".
  const times: number[] = [];
  const entryOp: number[] = [];
  const isCall: boolean[] = [];
  for (const o of ops) {
    times.push(o.invoke);
    entryOp.push(o.n);
    isCall.push(true);
    if (o.complete !== Infinity) {
      times.push(o.complete);
      entryOp.push(o.n);
      isCall.push(false);
    }
  }
  const order = times.map((_, i) => i);
  order.sort((a, b) => times[a]! - times[b]! || Number(isCall[b]) - Number(isCall[a]) || a - b);
  const E = order.length;
  const eOp = new Int32Array(E);
  const eCall = new Uint8Array(E);
  const match = new Int32Array(E).fill(-1);
  const callOf = new Int32Array(n).fill(-1);
  for (let e = 0; e < E; e++) {
    const i = order[e]!;
    eOp[e] = entryOp[i]!;
    eCall[e] = isCall[i] ? 1 : 0;
    if (isCall[i]) callOf[entryOp[i]!] = e;
  }
  for (let e = 0; e < E; e++) if (!eCall[e]) match[callOf[eOp[e]!]!] = e;

  // Indeterminate writes ("lazy": optional, never complete) stay out of the list and are
  // tried only when the list is stuck, so configurations without them are explored first and
  // the cache's subsumption prunes their useless placements. They are grouped into classes
  // of interchangeable twins, taken in invoke order (see `lazyClasses`), and conditional
  // classes are indexed by the modIndex they need: a stuck configuration looks at a few
  // candidates, not at every pending one.
  const lz = lazyClasses(ops, callOf);
  const HEAD = E;
  const TAIL = E + 1;
  const next = new Int32Array(E + 2);
  const prev = new Int32Array(E + 2);
  let last = HEAD;
  for (let e = 0; e < E; e++) {
    if (eCall[e] && lz.classOf[eOp[e]!] !== -1) continue;
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = TAIL;
  prev[TAIL] = last;

  const unlink = (e: number): void => {
    next[prev[e]!] = next[e]!;
    prev[next[e]!] = prev[e]!;
  };
  const relink = (e: number): void => {
    next[prev[e]!] = e;
    prev[next[e]!] = e;
  };

  // Zobrist hashing of the required part of the set (optional bits hash to 0: see ConfigCache).
  const words = (n + 31) >>> 5;
  const zob = new Uint32Array(n);
  const zobAll = new Uint32Array(n);
  const optional = new Uint32Array(words);
  for (const o of ops) {
    zobAll[o.n] = fmix32(o.n * 0x9e3779b9 + 0x7f4a7c15);
    if (o.required) zob[o.n] = zobAll[o.n]!;
    else optional[o.n >>> 5]! |= 1 << (o.n & 31);
  }
  const bits = new Uint32Array(words);
  const cache = new ConfigCache(optional);
  let setHash = 0;
  let fullHash = 0;

  const stack = new Int32Array(n);
  const saved: RegisterState[] = new Array<RegisterState>(n);
  const skipped = new Uint8Array(n);
  // For a lazy choice: where the second pass was (stuck entry, candidate classes, cursor).
  const stuckAt = new Int32Array(n);
  const candsAt: (readonly number[])[] = new Array<readonly number[]>(n);
  const cursorAt = new Int32Array(n);
  let sp = 0;
  let state = km.initial;
  let steps = 0;
  let deepest: SearchResult['deepest'];
  /** Required operations in `deepest` (the measure of depth: optional ones do not count). */
  let deepestDone = 0;

  /** Takes `o` (its call is entry `c`) into the order — applied as `s`, or skipped — unless that configuration failed before. */
  const push = (c: number, o: ModelOp, s: RegisterState, skip: boolean): boolean => {
    const w = o.n >>> 5;
    const bit = 1 << (o.n & 31);
    bits[w]! |= bit;
    const h = setHash ^ zob[o.n]!;
    const f = fullHash ^ zobAll[o.n]!;
    if (!cache.addIfNew(h, f, bits, s, !skip)) {
      bits[w]! &= ~bit;
      return false;
    }
    setHash = h;
    fullHash = f;
    stack[sp] = c;
    saved[sp] = state;
    skipped[sp] = skip ? 1 : 0;
    sp++;
    state = s;
    if (lz.classOf[o.n] === -1) {
      unlink(c);
      if (match[c] !== -1) unlink(match[c]!);
    }
    const done = requiredTotal - remaining + (o.required ? 1 : 0);
    if (trace && (deepest === undefined || done > deepestDone)) {
      deepestDone = done;
      const order: number[] = [];
      for (let i = 0; i < sp; i++) if (!skipped[i]) order.push(sorted[eOp[stack[i]!]!]!.n);
      deepest = { order, state };
    }
    return true;
  };

  // Partial-order reduction: a write that overwrites without looking (put, delete without
  // prevIndex; for a required one only a put, as a required delete needs the key present)
  // never comes right after an indeterminate write. Whatever order does that also works
  // without the indeterminate write (its effect is overwritten; leaving it out only lowers
  // lastIndex, which permits more), and the search tries that order anyway.
  const blind = new Uint8Array(n);
  for (const o of ops)
    blind[o.n] =
      o.write && o.cond === undefined && (!o.del || !o.required) && o.obsValue === undefined ? 1 : 0;
  const afterLazy = (): boolean => sp > 0 && skipped[sp - 1] === 0 && lz.classOf[eOp[stack[sp - 1]!]!] !== -1;

  let e = next[HEAD]!;
  let phase: 1 | 2 = 1;
  /** In phase 2: the first return (or TAIL) of the list; lazy calls before it are candidates. */
  let stuck = TAIL;
  let cands: readonly number[] = [];
  let cursor = 0;
  for (;;) {
    if ((++steps & 1023) === 0) {
      if (steps >= budget.maxSteps) return { valid: 'unknown', steps, budget: 'steps' };
      if (performance.now() > budget.deadline) return { valid: 'unknown', steps, budget: 'time' };
      if (cache.bytes > budget.maxCacheBytes) return { valid: 'unknown', steps, budget: 'memory' };
    }
    if (phase === 1) {
      if (e !== TAIL && eCall[e]) {
        // A call: linearize its operation here if it applies.
        const o = ops[eOp[e]!]!;
        const s = blind[o.n] && afterLazy() ? Refusal.Value : step(state, o, km.known);
        if (typeof s !== 'number' && push(e, o, s, false)) {
          if (o.required && --remaining === 0) return { valid: true, steps };
          e = next[HEAD]!;
          continue;
        }
        e = next[e]!;
        continue;
      }
      // A return (its operation was not linearized in time) or the end: before giving up on
      // this configuration, try the indeterminate writes invoked before that point.
      stuck = e;
      phase = 2;
      cands = lz.candidates(state, afterLazy());
      cursor = 0;
      continue;
    }
    if (cursor < cands.length) {
      const cls = cands[cursor]!;
      if (lz.firstCall[cls]! >= stuck) {
        cursor = cands.length; // candidates are in invoke order: none further was invoked in time
        continue;
      }
      const o = lz.head(cls);
      if (o !== undefined && callOf[o.n]! < stuck && !(blind[o.n] && afterLazy())) {
        const s = step(state, o, km.known);
        if (typeof s !== 'number' && push(callOf[o.n]!, o, s, false)) {
          stuckAt[sp - 1] = stuck;
          candsAt[sp - 1] = cands;
          cursorAt[sp - 1] = cursor;
          lz.taken[cls]!++;
          e = next[HEAD]!;
          phase = 1;
          continue;
        }
      }
      cursor++;
      continue;
    }
    if (stuck !== TAIL) {
      // An optional operation at its deadline may not have happened at all: skip it.
      const o = ops[eOp[stuck]!]!;
      if (!o.required && push(callOf[o.n]!, o, state, true)) {
        e = next[HEAD]!;
        phase = 1;
        continue;
      }
    }
    // Undo the last choice and try the next candidate after it, in the pass that chose it.
    // Undoing a skip leaves us at that operation's deadline again, a dead end: keep undoing.
    for (;;) {
      if (sp === 0) {
        const r: SearchResult = { valid: false, steps };
        if (deepest) r.deepest = deepest;
        else if (trace) r.deepest = { order: [], state: km.initial };
        return r;
      }
      sp--;
      const c = stack[sp]!;
      const o = ops[eOp[c]!]!;
      state = saved[sp]!;
      bits[o.n >>> 5]! &= ~(1 << (o.n & 31));
      setHash ^= zob[o.n]!;
      fullHash ^= zobAll[o.n]!;
      if (o.required) remaining++;
      const cls = lz.classOf[o.n]!;
      if (cls !== -1) {
        lz.taken[cls]!--;
        phase = 2;
        stuck = stuckAt[sp]!;
        cands = candsAt[sp]!;
        cursor = cursorAt[sp]! + 1;
        break;
      }
      if (match[c] !== -1) relink(match[c]!);
      relink(c);
      if (skipped[sp]) continue;
      e = next[c]!;
      phase = 1;
      break;
    }
  }
}

/**
 * The indeterminate writes of a search, in classes of interchangeable twins. Two optional
 * operations that never complete and would do the same thing — same kind, same condition,
 * same index (if known), the same value as far as any read can tell — are interchangeable: in any
 * legal order using the later-invoked one but not the earlier, the earlier can take its
 * place (it was invoked even sooner). So a class is always used up in invoke order, and only
 * its next member is a candidate: 2^k subsets become k+1.
 */
function lazyClasses(ops: readonly ModelOp[], callOf: Int32Array) {
  const classOf = new Int32Array(ops.length).fill(-1);
  const members: number[][] = [];
  const ids = new Map<string, number>();
  const unconditional: number[] = [];
  const conditional: number[] = [];
  const byCond = new Map<number, number[]>();
  for (const o of ops) {
    if (o.required || o.complete !== Infinity) continue;
    const k = `${o.del ? 'absent' : o.canon}|${o.cond ?? ''}|${o.present}|${o.index ?? ''}`;
    let id = ids.get(k);
    if (id === undefined) {
      id = members.length;
      ids.set(k, id);
      members.push([]);
      if (o.cond === undefined) unconditional.push(id);
      else {
        conditional.push(id);
        let b = byCond.get(o.cond);
        if (!b) byCond.set(o.cond, (b = []));
        b.push(id);
      }
    }
    members[id]!.push(o.n);
    classOf[o.n] = id;
  }
  for (const m of members) m.sort((a, b) => callOf[a]! - callOf[b]!);
  const firstCall = Int32Array.from(members, (m) => callOf[m[0]!]!);
  const byFirstCall = (a: number, b: number): number => firstCall[a]! - firstCall[b]!;
  unconditional.sort(byFirstCall);
  conditional.sort(byFirstCall);
  for (const b of byCond.values()) b.sort(byFirstCall);
  const anyCond = [...unconditional, ...conditional].sort(byFirstCall);
  const taken = new Int32Array(members.length);
  const withCond = new Map<number, number[]>();
  return {
    /** The class of each operation, -1 for those that are not lazy. */
    classOf,
    /** The call entry of each class's first member (candidate lists are sorted by it). */
    firstCall,
    /** How many of each class's members are in the current order (always the first ones). */
    taken,
    /** The next member of a class, if any. */
    head(cls: number): ModelOp | undefined {
      const n = members[cls]![taken[cls]!];
      return n === undefined ? undefined : ops[n];
    },
    /**
     * The classes worth trying in state `s`: a conditional one only if its condition may
     * hold; right after another indeterminate write, only conditional ones (the search's
     * partial-order reduction rules out the others there, as they overwrite blindly).
     */
    candidates(s: RegisterState, afterLazy: boolean): readonly number[] {
      if (afterLazy) return s.m === UNKNOWN ? conditional : (byCond.get(s.m) ?? []);
      if (s.m === UNKNOWN) return anyCond;
      const b = byCond.get(s.m);
      if (b === undefined) return unconditional;
      let c = withCond.get(s.m);
      if (!c) withCond.set(s.m, (c = [...unconditional, ...b].sort(byFirstCall)));
      return c;
    },
  };
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** MurmurHash3's finalizer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Lowe's cache of configurations (linearized set, state) already explored — each of them
 * failed, or the search would have ended —, in flat typed arrays: a chained hash table keyed
 * by the required part of the set mixed with the state.
 *
 * With subsumption for optional operations: a configuration that differs from a failed one
 * only by having used up more optional operations fails too (every way to finish from it
 * also finishes from the failed one, leaving those operations out). Together with the
 * search trying indeterminate writes last, this prunes most placements of writes nobody
 * saw as soon as a later write overwrites them.
 */
class ConfigCache {
  private cap = 64;
  /** Per entry: the state (v, m, l). */
  private st: Float64Array;
  private chain: Int32Array;
  /** Per entry: how many optional operations its set holds. */
  private optCount: Int32Array;
  /** Per entry: where its set starts in `pool`. */
  private at: Int32Array;
  /**
   * The sets, compressed: the number of leading all-ones words, the number of other
   * non-zero words, then (word index, word) for each.
   */
  private pool: Uint32Array;
  private used = 0;
  private readonly heads = new Map<number, number>();
  /** Per entry: the next one with the same full-set hash and state hash. */
  private exactChain: Int32Array;
  private readonly exactHeads = new Map<number, number>();
  /** How many entries of a chain the cover check looks at. */
  private static readonly LOOK = 32;
  private size = 0;
  private readonly words: number;
  private readonly scratch: Uint32Array;

  /** @param optional the bits of optional operations. */
  constructor(private readonly optional: Uint32Array) {
    this.words = optional.length;
    this.st = new Float64Array(this.cap * 3);
    this.chain = new Int32Array(this.cap);
    this.optCount = new Int32Array(this.cap);
    this.exactChain = new Int32Array(this.cap);
    this.at = new Int32Array(this.cap);
    this.pool = new Uint32Array(this.cap * 8);
    this.scratch = new Uint32Array(this.words);
  }

  /** Bytes held. */
  get bytes(): number {
    return (
      this.st.byteLength +
      this.chain.byteLength +
      this.optCount.byteLength +
      this.exactChain.byteLength +
      this.at.byteLength +
      this.pool.byteLength +
      this.size * 80
    );
  }

  /**
   * Adds the configuration; false when it (or, with `subsume`, one that covers it) was
   * already there.
   *
   * A cached configuration has failed, or is an ancestor of the current one on the search
   * path. Exactly equal to an ancestor is impossible (the set grows along a path), but
   * covering is not: a descendant reached by optional choices only (no required operation
   * in between) may be covered by its ancestor. For an indeterminate write that is still
   * right to prune (the ancestor's other choices cover every way to finish without it); for
   * skipping an optional operation at its deadline it is not (that skip is the ancestor's
   * only way past the deadline), so skips are checked without subsumption.
   *
   * @param requiredHash the Zobrist hash of the required operations in `bits`.
   */
  addIfNew(
    requiredHash: number,
    fullHash: number,
    bits: Uint32Array,
    s: RegisterState,
    subsume: boolean,
  ): boolean {
    const sh = fmix32((s.v + 2) ^ Math.imul(s.m + 2, 0x27d4eb2f) ^ Math.imul(s.l, 0x165667b1));
    const W = this.words;
    const opt = this.optional;
    const sameState = (i: number): boolean =>
      this.st[3 * i] === s.v && this.st[3 * i + 1] === s.m && this.st[3 * i + 2] === s.l;
    // Exactly this configuration.
    const eh = (fullHash ^ sh) >>> 0;
    const exactFirst = this.exactHeads.get(eh) ?? -1;
    for (let i = exactFirst; i !== -1; i = this.exactChain[i]!) {
      if (!sameState(i)) continue;
      const old = this.expand(i);
      let same = true;
      for (let k = 0; k < W && same; k++) same = old[k] === bits[k];
      if (same) return false;
    }
    // One that covers it. Per (required set, state) the chain is an antichain of optional
    // sets: an entry a newer one covers is unlinked, one found covering moves to the front.
    // Only the first entries are looked at (missing a cover costs time, never correctness).
    const ch = (requiredHash ^ sh) >>> 0;
    let ours = 0;
    for (let k = 0; k < W; k++) ours += popcount(bits[k]! & opt[k]!);
    const first = this.heads.get(ch) ?? -1;
    let prev = -1;
    for (let i = first, seen = 0; subsume && i !== -1 && seen < ConfigCache.LOOK; seen++) {
      const nextInChain = this.chain[i]!;
      if (sameState(i)) {
        const old = this.expand(i);
        let covered = this.optCount[i]! <= ours;
        let coversOld = this.optCount[i]! > ours;
        for (let k = 0; k < W && (covered || coversOld); k++) {
          const o = old[k]!;
          const b = bits[k]!;
          if (((o ^ b) & ~opt[k]!) !== 0) covered = coversOld = false; // other required ones
          if ((o & ~b) !== 0) covered = false;
          if ((b & ~o) !== 0) coversOld = false;
        }
        if (covered) {
          if (prev !== -1) {
            this.chain[prev] = nextInChain;
            this.chain[i] = first;
            this.heads.set(ch, i);
          }
          return false;
        }
        if (coversOld) {
          if (prev === -1) this.heads.set(ch, nextInChain);
          else this.chain[prev] = nextInChain;
          i = nextInChain;
          continue;
        }
      }
      prev = i;
      i = nextInChain;
    }
    if (this.size === this.cap) this.grow();
    const i = this.size++;
    this.st[3 * i] = s.v;
    this.st[3 * i + 1] = s.m;
    this.st[3 * i + 2] = s.l;
    this.optCount[i] = ours;
    this.chain[i] = this.heads.get(ch) ?? -1;
    this.heads.set(ch, i);
    this.exactChain[i] = exactFirst;
    this.exactHeads.set(eh, i);
    this.store(i, bits);
    return true;
  }

  private store(i: number, bits: Uint32Array): void {
    const W = this.words;
    let lo = 0;
    while (lo < W && bits[lo] === 0xffffffff) lo++;
    let count = 0;
    for (let k = lo; k < W; k++) if (bits[k] !== 0) count++;
    const need = this.used + 2 + 2 * count;
    if (need > this.pool.length) {
      const pool = new Uint32Array(Math.max(need, this.pool.length * 2));
      pool.set(this.pool);
      this.pool = pool;
    }
    let p = this.used;
    this.at[i] = p;
    this.pool[p++] = lo;
    this.pool[p++] = count;
    for (let k = lo; k < W; k++) {
      if (bits[k] === 0) continue;
      this.pool[p++] = k;
      this.pool[p++] = bits[k]!;
    }
    this.used = p;
  }

  private expand(i: number): Uint32Array {
    const out = this.scratch;
    let p = this.at[i]!;
    const lo = this.pool[p++]!;
    const count = this.pool[p++]!;
    out.fill(0xffffffff, 0, lo);
    out.fill(0, lo);
    for (let j = 0; j < count; j++, p += 2) out[this.pool[p]!] = this.pool[p + 1]!;
    return out;
  }

  private grow(): void {
    this.cap *= 2;
    const st = new Float64Array(this.cap * 3);
    st.set(this.st);
    this.st = st;
    const chain = new Int32Array(this.cap);
    chain.set(this.chain);
    this.chain = chain;
    const at = new Int32Array(this.cap);
    at.set(this.at);
    this.at = at;
    const optCount = new Int32Array(this.cap);
    optCount.set(this.optCount);
    this.optCount = optCount;
    const exactChain = new Int32Array(this.cap);
    exactChain.set(this.exactChain);
    this.exactChain = exactChain;
  }
}
