import { observedValue, type Operation } from './history.js';

/**
 * The sequential specification of one kv key: a register with etcd-style modification
 * indexes, as the kv state machine implements it (src/kv/state.ts).
 *
 * State `{ value, modIndex, lastIndex }`:
 * - `value`: the current value, or absent;
 * - `modIndex`: the log index of the last write to the key; 0 exactly when the key is absent
 *   (a delete resets it to 0, so `prevIndex=0` ⇔ "only if absent"); or {@link UNKNOWN} after an
 *   indeterminate write whose index nobody learnt;
 * - `lastIndex`: a lower bound on the log index of the last write linearized so far. The log
 *   orders writes, so a write that reports index `i` must come after every write with a lower
 *   index and before every one with a higher index: `i > lastIndex`.
 *
 * Values are interned to small integers per key ({@link ABSENT} is "no value"), so states
 * compare and hash cheaply in the search.
 *
 * @module
 */

/** The value id of "absent". */
export const ABSENT = -1;
/**
 * The value id the search uses for every value no read observes: nothing can tell those
 * apart, so merging them lets the cache see that states differing only in them are one.
 */
export const UNREAD = -2;
/** The modIndex set by an indeterminate write whose log index is not known. */
export const UNKNOWN = -1;
/**
 * A known modIndex that none of the operations at hand names (as prevIndex or observed
 * modIndex): they cannot tell such indexes apart, so witnesses merge them into this.
 */
export const OTHER_INDEX = -3;

/** One state of the register. `v` value id, `m` modIndex, `l` lastIndex (see the module doc). */
export interface RegisterState {
  readonly v: number;
  readonly m: number;
  readonly l: number;
}

/**
 * An operation compiled for the search: its interval, whether it must be linearized, and
 * its precondition, observation and effect as numbers.
 */
export interface ModelOp {
  /** Position in the key's compiled array (the bit in the search's bitset). */
  readonly n: number;
  readonly op: Operation;
  readonly invoke: number;
  /** +Infinity for indeterminate operations. */
  readonly complete: number;
  /** ok operations and observing failures must be linearized; indeterminate writes may be left out. */
  readonly required: boolean;
  /** Changes the state (put, cas, delete that took or may have taken effect). */
  readonly write: boolean;
  /** The write is a delete. */
  readonly del: boolean;
  /** Value id written (ABSENT for a delete). */
  readonly newValue: number;
  /** `newValue` as the search sees it: UNREAD when no operation of the key observes it. */
  readonly canon: number;
  /** The log index the write reported, when known. */
  readonly index: number | undefined;
  /** Applies only when modIndex equals this (cas / delete prevIndex). */
  readonly cond: number | undefined;
  /** Applies only when the key is present (a delete that deleted something). */
  readonly present: boolean;
  /** Observed value id (ABSENT: observed absent). */
  readonly obsValue: number | undefined;
  /** Observed modIndex (get's X-Mod-Index, 412's modIndex). */
  readonly obsMod: number | undefined;
  /** Observed modIndex ≠ this (a 412 precondition failure). */
  readonly notMod: number | undefined;
}

/** Per-key context of the model: interned values and the log indexes known to belong to other writes. */
export interface KeyModel {
  readonly key: string;
  /** Value by id. */
  readonly values: readonly string[];
  /**
   * Every log index reported by some operation in the whole history (any key). An
   * indeterminate write applied at a log index of its own, which is none of these.
   */
  readonly known: ReadonlySet<number>;
  readonly initial: RegisterState;
}

/** The state of a key nobody wrote yet. */
export const EMPTY: RegisterState = { v: ABSENT, m: 0, l: 0 };

/** Why an operation cannot be applied in a state (see {@link describeRefusal}). */
export const Refusal = {
  CondMismatch: 1,
  CondUnknown: 2,
  NotPresent: 3,
  Value: 4,
  Mod: 5,
  ModUnknown: 6,
  NotMod: 7,
  IndexOrder: 8,
} as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal];

/**
 * Compiles the operations of one key, dropping those that constrain nothing (failures that
 * are not observations; reads without an answer).
 *
 * @param intern maps a value to its id (shared by the key's writes and reads).
 */
export function compileOps(ops: readonly Operation[], intern: (v: string) => number): ModelOp[] {
  const compiled: Compiled[] = [];
  const observed = new Set<number>();
  for (const o of ops) {
    const c = compileOp(o, intern);
    if (c === undefined) continue;
    compiled.push(c);
    if (c.obsValue !== undefined) observed.add(c.obsValue);
  }
  return compiled.map((c, n) => ({
    ...c,
    n,
    canon: c.newValue === ABSENT || observed.has(c.newValue) ? c.newValue : UNREAD,
  }));
}

type Compiled = Omit<ModelOp, 'n' | 'canon'>;

function compileOp(o: Operation, intern: (v: string) => number): Compiled | undefined {
  const base = {
    op: o,
    invoke: o.invoke,
    complete: o.outcome === 'info' ? Infinity : (o.complete ?? Infinity),
    required: o.outcome !== 'info',
    write: false,
    del: false,
    newValue: ABSENT,
    index: undefined,
    cond: undefined,
    present: false,
    obsValue: undefined,
    obsMod: undefined,
    notMod: undefined,
  } satisfies Compiled;
  const observation = o.outcome === 'fail' && (o.error === 'precondition' || o.error === 'not-found');
  if (o.outcome === 'fail' && !observation) return undefined;
  switch (o.f) {
    case 'get': {
      if (o.outcome !== 'ok') return undefined;
      const v = observedValue(o);
      if (v === undefined) return undefined;
      return {
        ...base,
        obsValue: v === null ? ABSENT : intern(v),
        obsMod: v === null ? 0 : o.result?.modIndex,
      };
    }
    case 'put':
    case 'cas': {
      if (o.outcome === 'fail') {
        if (o.error !== 'precondition') return undefined;
        return { ...base, notMod: o.prevIndex ?? 0, obsMod: o.result?.modIndex };
      }
      return {
        ...base,
        write: true,
        newValue: intern(o.value ?? ''),
        index: o.outcome === 'ok' ? o.result?.index : undefined,
        cond: o.f === 'cas' ? (o.prevIndex ?? 0) : undefined,
      };
    }
    case 'delete': {
      if (o.outcome === 'fail' && o.error === 'precondition')
        return { ...base, notMod: o.prevIndex ?? 0, obsMod: o.result?.modIndex };
      if (o.outcome === 'fail' || (o.outcome === 'ok' && o.result?.deleted === false))
        return { ...base, obsValue: ABSENT };
      // Took (or may have taken) effect: the key was present and matched prevIndex.
      return {
        ...base,
        write: true,
        del: true,
        present: true,
        index: o.outcome === 'ok' ? o.result?.index : undefined,
        cond: o.prevIndex,
      };
    }
  }
}

/**
 * Applies `o` to `s`: the next state, or why `o` cannot happen in `s`. Reads that learn
 * nothing new return `s` itself. The search keeps unread values as UNREAD; `precise` keeps
 * each value's own id (for explanations).
 */
export function step(
  s: RegisterState,
  o: ModelOp,
  known: ReadonlySet<number>,
  precise = false,
): RegisterState | Refusal {
  let m = s.m;
  let l = s.l;
  if (o.cond !== undefined) {
    if (m === UNKNOWN) {
      // The unknown modIndex belongs to a present key, exceeds lastIndex, and is no known index.
      if (o.cond === 0 || o.cond <= l || known.has(o.cond)) return Refusal.CondUnknown;
      m = o.cond;
      l = o.cond;
    } else if (m !== o.cond) return Refusal.CondMismatch;
  }
  if (o.present && s.v === ABSENT) return Refusal.NotPresent;
  if (o.obsValue !== undefined && s.v !== o.obsValue) return Refusal.Value;
  if (o.obsMod !== undefined) {
    if (m === UNKNOWN) {
      if (o.obsMod === 0 || o.obsMod <= l || known.has(o.obsMod)) return Refusal.ModUnknown;
      m = o.obsMod;
      l = o.obsMod;
    } else if (m !== o.obsMod) return Refusal.Mod;
  }
  // An unknown modIndex may or may not equal notMod: allowed (precision lost, see linearizable.ts).
  if (o.notMod !== undefined && m === o.notMod) return Refusal.NotMod;
  if (!o.write) return m === s.m ? s : { v: s.v, m, l };
  if (o.index !== undefined) {
    if (o.index <= l) return Refusal.IndexOrder;
    l = o.index;
  }
  if (o.del) return { v: ABSENT, m: 0, l };
  return { v: precise ? o.newValue : o.canon, m: o.index ?? UNKNOWN, l };
}

/** A state as text: `"v3" modIndex=42` or `absent`. */
export function describeState(s: RegisterState, km: KeyModel): string {
  if (s.v === ABSENT) return 'absent';
  const m = s.m === UNKNOWN ? 'unknown' : s.m === OTHER_INDEX ? 'some other index' : String(s.m);
  if (s.v === UNREAD) return `holding a value no read saw, modIndex=${m}`;
  return `${JSON.stringify(km.values[s.v])} modIndex=${m}`;
}

function describeValue(v: number | undefined, km: KeyModel): string {
  return v === undefined || v === ABSENT ? 'absent' : JSON.stringify(km.values[v]);
}

/** One sentence: why `o` cannot be applied in state `s`. */
export function describeRefusal(r: Refusal, s: RegisterState, o: ModelOp, km: KeyModel): string {
  const state = describeState(s, km);
  switch (r) {
    case Refusal.CondMismatch:
      return `it needs modIndex=${o.cond} but the key is ${state}`;
    case Refusal.CondUnknown:
      return `it needs modIndex=${o.cond}, which cannot be the unknown index of the indeterminate write that left the key ${state}`;
    case Refusal.NotPresent:
      return `it deleted the key, but the key is absent`;
    case Refusal.Value:
      return `it observed ${describeValue(o.obsValue, km)} but the key is ${state}`;
    case Refusal.Mod:
      return `it observed modIndex=${o.obsMod} but the key is ${state}`;
    case Refusal.ModUnknown:
      return `it observed modIndex=${o.obsMod}, which cannot be the unknown index of the indeterminate write that left the key ${state}`;
    case Refusal.NotMod:
      return `its precondition failed (modIndex ≠ ${o.notMod}) but the key is ${state}`;
    case Refusal.IndexOrder:
      return `its log index ${o.index} is not above ${s.l}, the index of a write already ordered before it`;
  }
}

/**
 * Whether write `w` can be left out of a history whose other operations are `rest` without
 * losing a violation: if the history with `w` is linearizable, so is `rest` alone. For an
 * indeterminate `w` the converse holds too (it may not have happened), so dropping it
 * changes nothing but the size of the search.
 *
 * Why: take a legal order with `w`. The operations between `w` and the next write observe
 * the state `w` left, and the next write applies on top of it. Leaving `w` out changes what
 * they see unless none of them depends on `w`: none observes its value (values are unique
 * per write), its index (as a modIndex or prevIndex; an unknown index may be any index that
 * is not known), or, for a delete, the key's absence; and none is a "weak" observation that
 * depends on more than one write: a 412 without the modIndex it saw, or a required delete
 * without prevIndex, which only needs the key present. (An optional delete is not weak: if
 * leaving `w` out makes the key absent, leaving the delete out too ends in the same state.)
 * Operations that finished before `w` began come before it in every order, so they are never
 * in that stretch. Lowering `lastIndex` only permits more.
 */
export function mayLeaveOut(w: ModelOp, rest: Iterable<ModelOp>, known: ReadonlySet<number>): boolean {
  if (!w.write) return true;
  for (const x of rest) {
    if (x === w || x.complete < w.invoke) continue;
    if (isWeak(x)) return false;
    if (w.del) {
      if (x.obsValue === ABSENT || x.cond === 0 || x.obsMod === 0) return false;
      continue;
    }
    if (x.obsValue !== undefined && x.obsValue === w.newValue) return false;
    if (refersTo(x.cond, w, known) || refersTo(x.obsMod, w, known)) return false;
  }
  return true;
}

function isWeak(x: ModelOp): boolean {
  return (
    (x.notMod !== undefined && x.obsMod === undefined) || (x.present && x.cond === undefined && x.required)
  );
}

function refersTo(r: number | undefined, w: ModelOp, known: ReadonlySet<number>): boolean {
  if (r === undefined || r === 0) return false;
  return w.index !== undefined ? r === w.index : !known.has(r);
}

/** One key's history, compiled for the search. */
export interface KeyHistory {
  km: KeyModel & {
    /** Values written by some operation of the key (that may have taken effect). */
    readonly written: ReadonlySet<number>;
  };
  /** Compiled, with unnoticeable indeterminate writes dropped. */
  ops: ModelOp[];
}

/**
 * Compiles the operations of one key: interns values, drops what constrains nothing and
 * the indeterminate writes no operation could have noticed ({@link mayLeaveOut}).
 *
 * @param known every log index reported anywhere in the history.
 * @param init the key's state before the history (default: absent).
 */
export function compileKey(
  key: string,
  raw: readonly Operation[],
  known: ReadonlySet<number>,
  init: { value: string | null; modIndex: number } | undefined,
): KeyHistory {
  const values: string[] = [];
  const ids = new Map<string, number>();
  const intern = (v: string): number => {
    let id = ids.get(v);
    if (id === undefined) {
      id = values.length;
      values.push(v);
      ids.set(v, id);
    }
    return id;
  };
  const initial: RegisterState =
    init === undefined || init.value === null
      ? EMPTY
      : { v: intern(init.value), m: init.modIndex, l: init.modIndex };
  const all = compileOps(raw, intern);
  // Dropping each of these alone is sound, so dropping all is (mayLeaveOut is monotone).
  const kept = all.filter((o) => o.required || !mayLeaveOut(o, all, known));
  const written = new Set<number>();
  for (const o of all) if (o.write && !o.del) written.add(o.newValue);
  return { km: { key, values, known, initial, written }, ops: renumber(kept) };
}

/** Numbers operations 0..n-1 in order (the bit positions of a search). */
export function renumber(ops: readonly ModelOp[]): ModelOp[] {
  return ops.map((o, n) => (o.n === n ? o : { ...o, n }));
}
