import type { Operation } from './history.js';
import {
  ABSENT,
  OTHER_INDEX,
  UNKNOWN,
  UNREAD,
  describeRefusal,
  describeState,
  mayLeaveOut,
  renumber,
  step,
  type KeyHistory,
  type KeyModel,
  type ModelOp,
  type RegisterState,
} from './model.js';
import { search, type Budget } from './search.js';

/**
 * Witnesses of violations: a small set of one key's operations that cannot be linearized,
 * found by shrinking, and a readable explanation (see linearizable.ts for the overview).
 *
 * @module
 */

/** A small set of operations of one key that cannot be ordered, and why. */
export interface Witness {
  key: string;
  /** In invoke order. */
  ops: Operation[];
  explanation: string;
  /** True when no single operation can be removed (shrinking finished within its time). */
  minimal: boolean;
}

/** Search steps allowed to judge one witness candidate (about 20–50 ms). */
const CANDIDATE_STEPS = 500_000;

/** Budget of the shrinking. */
export interface ShrinkOptions {
  maxSteps: number;
  maxCacheBytes: number;
  shrinkTimeMs: number;
}

/**
 * Shrinks a key's non-linearizable history to a small witness: a window of operations
 * around where the search got stuck (or else the shortest failing prefix), then delta
 * debugging (drop chunks while it still fails), within `shrinkTimeMs`. Every candidate is
 * judged by {@link localProblem}, which never invents a violation. For readability, the
 * writes whose values or indexes the witness's reads saw (or a 412 denied) stay in it: a
 * stale read shows both writes.
 */
export function findWitness(p: KeyHistory, o: ShrinkOptions): Witness {
  const deadline = performance.now() + o.shrinkTimeMs;
  const { km } = p;
  const all = [...p.ops].sort((a, b) => a.invoke - b.invoke || a.n - b.n);
  const writes = all.filter((x) => x.write);
  const budget = { maxSteps: o.maxSteps, deadline, maxCacheBytes: o.maxCacheBytes };
  // Each candidate gets a slice of the budget: one hard candidate must not eat the time the
  // others need (undecided counts as "does not fail", so it only costs size).
  const slice = { ...budget, maxSteps: Math.min(o.maxSteps, CANDIDATE_STEPS) };
  const invalid = (shown: readonly ModelOp[]): boolean => candidateFails(shown, writes, km, slice);

  const sources = (keep: readonly ModelOp[]): ModelOp[] => {
    const inKeep = new Set(keep);
    for (const x of keep) {
      if (x.write) continue;
      for (const w of writes) {
        if (inKeep.has(w)) continue;
        const sawValue = x.obsValue !== undefined && x.obsValue !== ABSENT && x.obsValue === w.newValue;
        const sawIndex = x.obsMod !== undefined && x.obsMod !== 0 && x.obsMod === w.index;
        const denied = x.notMod !== undefined && x.notMod !== 0 && x.notMod === w.index;
        if (sawValue || sawIndex || denied) inKeep.add(w);
      }
    }
    return all.filter((x) => inKeep.has(x));
  };

  // 1. Locate. Where the search got stuck: the operation that could not meet its deadline
  // after the longest legal order found. The violation usually lies just before it, so
  // try windows of the operations invoked up to its completion, growing backwards.
  let current = all;
  const traced = search(p.ops, km, budget, true);
  const order = new Set(traced.deepest?.order ?? []);
  const pending = p.ops.filter((x) => x.required && !order.has(x.n));
  const blocker = pending.reduce<ModelOp | undefined>(
    (a, x) => (a === undefined || x.complete < a.complete ? x : a),
    undefined,
  );
  let located = false;
  if (blocker !== undefined) {
    let end = all.findIndex((x) => x.invoke > blocker.complete);
    if (end === -1) end = all.length;
    const at = all.indexOf(blocker);
    for (let k = 4; performance.now() < deadline; k *= 2) {
      const lo = Math.max(0, at - k);
      const cand = sources(all.slice(lo, end));
      if (invalid(cand)) {
        current = cand;
        located = true;
        break;
      }
      if (lo === 0) break;
    }
  }
  // Otherwise the shortest failing prefix. (Failing is not monotone in the prefix length,
  // so this is a heuristic start; every candidate is checked.)
  let lo = 0;
  let hi = all.length;
  while (!located && hi - lo > 1 && performance.now() < deadline) {
    const mid = (lo + hi) >>> 1;
    const cand = sources(all.slice(0, mid));
    if (invalid(cand)) {
      hi = mid;
      current = cand;
    } else lo = mid;
  }

  // 2. Delta debugging: drop chunks while the rest stays non-linearizable.
  let granularity = 2;
  let minimal = false;
  while (performance.now() < deadline) {
    if (current.length <= 1) {
      minimal = true;
      break;
    }
    const size = Math.ceil(current.length / granularity);
    let reduced = false;
    for (let start = 0; start < current.length && performance.now() < deadline; start += size) {
      const cand = sources([...current.slice(0, start), ...current.slice(start + size)]);
      if (cand.length < current.length && invalid(cand)) {
        current = cand;
        granularity = Math.max(granularity - 1, 2);
        reduced = true;
        break;
      }
    }
    if (reduced) continue;
    if (performance.now() >= deadline) break;
    if (granularity >= current.length) {
      minimal = true;
      break;
    }
    granularity = Math.min(granularity * 2, current.length);
  }

  return { key: km.key, ops: current.map((x) => x.op), explanation: explain(current, writes, km), minimal };
}

/**
 * Whether the candidate `shown` (some of a key's operations) is non-linearizable in the
 * sense of {@link localProblem}: then the key's whole history is not linearizable either.
 *
 * @param writes every write of the key.
 */
export function candidateFails(
  shown: readonly ModelOp[],
  writes: readonly ModelOp[],
  km: KeyModel,
  budget: Budget,
): boolean {
  const local = localProblem(shown, writes, km);
  return (
    local !== undefined &&
    local.starts.every((s) => search(local.ops, { ...km, initial: s }, budget).valid === false)
  );
}

/** A witness candidate as a search problem of its own (see {@link localProblem}). */
interface LocalProblem {
  /** The candidate's operations (numbered first), then the concurrent writes, optional. */
  ops: ModelOp[];
  /** The states the earlier writes may have left, as far as `ops` can tell them apart. */
  starts: RegisterState[];
  /** Writes that completed before the candidate's first operation began. */
  before: ModelOp[];
}

/**
 * The candidate `shown` as a search problem that is linearizable whenever the whole key's
 * history is — so a candidate found non-linearizable is a true witness:
 * - reads outside it are dropped (a read only constrains);
 * - writes outside it that overlap its span become indeterminate: they may have taken
 *   effect at any time after their invoke, or not at all (keep them where the whole
 *   history's order puts them). Dropping their deadlines permits more, and lets the search
 *   treat them as cheaply as timed-out writes;
 * - writes that began after its last required operation completed are dropped (they come
 *   after it);
 * - writes that completed before its first operation began come before all of it: they
 *   are summarized as the states they may have left — the effect of any one of them (or
 *   the initial state if none had to happen), with `lastIndex` 0, which permits the most.
 * Undefined when the candidate requires nothing (then it is trivially linearizable).
 */
function localProblem(
  shown: readonly ModelOp[],
  writes: readonly ModelOp[],
  km: KeyModel,
): LocalProblem | undefined {
  const required = shown.filter((x) => x.required);
  if (required.length === 0) return undefined;
  const t0 = Math.min(...shown.map((x) => x.invoke));
  const t1 = Math.max(...required.map((x) => x.complete));
  const inShown = new Set(shown);
  const before: ModelOp[] = [];
  const concurrent: ModelOp[] = [];
  for (const w of writes) {
    if (inShown.has(w)) continue;
    if (w.complete < t0) before.push(w);
    else if (w.invoke <= t1) concurrent.push({ ...w, required: false, complete: Infinity });
  }
  // Values nobody here reads, and indexes nobody here names, are all alike to these operations.
  const seen = new Set<number>();
  const named = new Set<number>();
  for (const x of [...shown, ...concurrent]) {
    if (x.obsValue !== undefined) seen.add(x.obsValue);
    for (const r of [x.cond, x.obsMod, x.notMod]) if (r !== undefined) named.add(r);
  }
  // Drop the overlapping writes none of these operations could notice (as compileKey does).
  const noticed = concurrent.filter((w) => !mayLeaveOut(w, [...shown, ...concurrent], km.known));
  const ops = renumber(
    [...shown, ...noticed].map((x) =>
      x.write && !x.del && x.canon !== UNREAD && !seen.has(x.newValue) ? { ...x, canon: UNREAD } : x,
    ),
  );
  const starts = new Map<string, RegisterState>();
  const add = (s: RegisterState): void => {
    const v = s.v === ABSENT || seen.has(s.v) ? s.v : UNREAD;
    const m = s.m <= 0 || named.has(s.m) ? s.m : OTHER_INDEX;
    starts.set(`${v},${m}`, { v, m, l: 0 });
  };
  if (!before.some((w) => w.required)) add(km.initial);
  for (const w of before) add(effect(w));
  return { ops, starts: [...starts.values()], before };
}

/** The state a write leaves, with `lastIndex` 0. */
function effect(w: ModelOp): RegisterState {
  return w.del ? { v: ABSENT, m: 0, l: 0 } : { v: w.newValue, m: w.index ?? UNKNOWN, l: 0 };
}

/** The deepest legal partial order of a witness, and why nothing extends it. */
function explain(shown: readonly ModelOp[], writes: readonly ModelOp[], km: KeyHistory['km']): string {
  const local = localProblem(shown, writes, km);
  const name = `key ${JSON.stringify(km.key)}`;
  if (local === undefined) return `${name}: not linearizable`;
  const { ops, before } = local;
  // Explain from the state the most recent earlier write left (the search showed every
  // start fails; this is the one a reader expects).
  const last = before.reduce<ModelOp | undefined>(
    (a, w) => (a === undefined || w.complete > a.complete ? w : a),
    undefined,
  );
  const start = last === undefined ? km.initial : effect(last);
  const r = search(
    ops,
    { ...km, initial: start },
    { maxSteps: 5_000_000, deadline: performance.now() + 1_000, maxCacheBytes: 256 * 1024 * 1024 },
    true,
  );
  if (r.valid !== false || r.deepest === undefined) {
    return `${name}: not linearizable (${r.valid === 'unknown' ? 'no explanation: the budget ran out' : 'no explanation found'})`;
  }
  // The order up to its last operation of the witness (later writes of others only blur it).
  const full = r.deepest.order;
  let cut = full.length;
  while (cut > 0 && full[cut - 1]! >= shown.length) cut--;
  const order = full.slice(0, cut);
  // Replay with each value's own id (the search merges values no read saw).
  let state = start;
  for (const i of order) {
    const next = step(state, ops[i]!, km.known, true);
    if (typeof next !== 'number') state = next;
  }
  const inWitness = (x: ModelOp): boolean => x.n < shown.length;
  const label = (x: ModelOp): string => `#${x.op.id}`;
  const others = writes.length - shown.filter((x) => x.write).length;
  const lines: string[] = [];
  lines.push(
    `${name}: ` +
      (shown.length === 1 ? 'this operation cannot be' : `these ${shown.length} operations cannot all be`) +
      ` linearized` +
      (others > 0
        ? `, whichever of the key's ${plural(others, 'other write')} took effect (and when).`
        : '.'),
  );
  const describe = (s: RegisterState): string => {
    let text = describeState(s, km);
    if (s.v !== ABSENT) {
      const writer = writes.find((x) => !x.del && x.newValue === s.v);
      if (writer && !shown.includes(writer)) text += ` (written by ${label(writer)}, not in the witness)`;
    }
    return text;
  };
  const ordered = order.map((i) => ops[i]!).filter(inWitness);
  const between = order.length - ordered.length;
  const earlier = last === undefined ? '' : ', as earlier writes left it';
  if (ordered.length === 0)
    lines.push(`None of them can come first: the key is ${describe(state)}${earlier}.`);
  else
    lines.push(
      `Longest legal order found` +
        (last === undefined ? '' : ` (starting from the key ${describe(start)}${earlier})`) +
        `: ${ordered.map(label).join(' → ')}` +
        (between > 0 ? ` (with ${plural(between, 'other write')} before or between)` : '') +
        `, leaving the key ${describe(state)}.`,
    );
  const done = new Set(order);
  const pending = ops.filter((x) => !done.has(x.n) && inWitness(x));
  const due = Math.min(...pending.filter((x) => x.required).map((x) => x.complete));
  const blocker = pending.find((x) => x.required && x.complete === due);
  if (blocker) lines.push(`Next, ${label(blocker)} must take effect by ${blocker.complete}, but:`);
  for (const x of pending.filter((y) => y.invoke <= due)) {
    const s = step(state, x, km.known);
    let why =
      typeof s === 'number'
        ? describeRefusal(s, state, x, km)
        : 'it could come next, but then the rest cannot be ordered';
    if (x.obsValue !== undefined && x.obsValue !== ABSENT && !km.written.has(x.obsValue))
      why += ` (no operation wrote ${JSON.stringify(km.values[x.obsValue])} to this key)`;
    lines.push(`  ${label(x)} ${x.op.f}: ${why}`);
  }
  return lines.join('\n');
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}
