import type { Operation } from './history.js';

/**
 * Random histories of a correct kv store, for testing the checker: processes issue
 * overlapping operations; each takes effect at a random instant inside its interval against
 * one in-memory store that numbers writes like a Raft log; some time out (before or after
 * taking effect; one that timed out before may still take effect later, or never), some
 * fail without effect. Such a history is linearizable by construction. {@link mutate} then
 * changes one observation so that it usually is not.
 *
 * Everything is decided by the seed.
 *
 * @module
 */

/** A small seeded generator (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Options of {@link generateHistory}. */
export interface GenOptions {
  seed: number;
  /** Operations to invoke. */
  ops: number;
  processes: number;
  keys: number;
  /** Chance an operation times out (before or after taking effect). Default 0.05. */
  infoRate?: number;
  /** Chance a write fails without effect (e.g. no leader). Default 0.03. */
  failRate?: number;
  /** Chance a get or 412 leaves out the modIndex it saw. Default 0.3. */
  dropModIndexRate?: number;
  /** Mix of put / get / cas / delete, as weights. Default [3, 4, 2, 1]. */
  mix?: readonly [number, number, number, number];
}

/** A generated history and the store's final state (every key, null when absent). */
export interface Generated {
  history: Operation[];
  final: Map<string, string | null>;
}

interface Pending {
  op: Operation;
  applied: boolean;
  /** What completing it reports, once applied. */
  outcome?: Pick<Operation, 'outcome' | 'error' | 'result' | 'value'>;
}

/** Generates a linearizable history (see the module doc). */
export function generateHistory(o: GenOptions): Generated {
  const rng = new Rng(o.seed);
  const infoRate = o.infoRate ?? 0.05;
  const failRate = o.failRate ?? 0.03;
  const dropMod = o.dropModIndexRate ?? 0.3;
  const mix = o.mix ?? [3, 4, 2, 1];
  const keys = Array.from({ length: o.keys }, (_, i) => `k${i}`);
  const store = new Map<string, { value: string; modIndex: number }>();
  const history: Operation[] = [];
  const busy: (Pending | undefined)[] = new Array<Pending | undefined>(o.processes).fill(undefined);
  const lastMod = Array.from({ length: o.processes }, () => new Map<string, number>());
  const ghosts: Pending[] = [];
  let time = 0;
  let logIndex = 0;
  let invoked = 0;
  let written = 0;

  const apply = (x: Pending, p: number | undefined): void => {
    const op = x.op;
    const cur = store.get(op.key);
    x.applied = true;
    if (op.f === 'get') {
      const result: Operation['result'] = {};
      if (cur && !rng.chance(dropMod)) result.modIndex = cur.modIndex;
      x.outcome = { outcome: 'ok', value: cur?.value ?? null, result };
      if (p !== undefined) lastMod[p]!.set(op.key, cur?.modIndex ?? 0);
      return;
    }
    logIndex += 1 + (rng.chance(0.2) ? rng.int(3) : 0); // other traffic takes log entries too
    const index = logIndex;
    const modIndex = cur?.modIndex ?? 0;
    if (op.prevIndex !== undefined && op.prevIndex !== modIndex) {
      x.outcome = {
        outcome: 'fail',
        error: 'precondition',
        result: rng.chance(dropMod) ? {} : { modIndex },
      };
      if (p !== undefined) lastMod[p]!.set(op.key, modIndex);
      return;
    }
    if (op.f === 'delete') {
      if (!cur) {
        x.outcome = rng.chance(0.5)
          ? { outcome: 'ok', result: { deleted: false } }
          : { outcome: 'fail', error: 'not-found' };
        return;
      }
      store.delete(op.key);
      x.outcome = { outcome: 'ok', result: { index } };
      if (p !== undefined) lastMod[p]!.set(op.key, 0);
      return;
    }
    store.set(op.key, { value: op.value!, modIndex: index });
    x.outcome = { outcome: 'ok', result: { index } };
    if (p !== undefined) lastMod[p]!.set(op.key, index);
  };

  const invoke = (p: number): void => {
    const key = rng.pick(keys);
    const total = mix[0] + mix[1] + mix[2] + mix[3];
    let r = rng.next() * total;
    const f = (['put', 'get', 'cas', 'delete'] as const).find((_, i) => (r -= mix[i]!) < 0) ?? 'get';
    const op: Operation = {
      id: history.length,
      process: p,
      key,
      f,
      invoke: time,
      complete: undefined,
      outcome: 'info',
    };
    if (f === 'put' || f === 'cas') op.value = `v${p}-${written++}`;
    if (f === 'cas' || (f === 'delete' && rng.chance(0.3))) {
      const known = lastMod[p]!.get(key) ?? 0;
      op.prevIndex = rng.chance(0.7) ? known : rng.chance(0.5) ? 0 : rng.int(logIndex + 1);
    }
    history.push(op);
    busy[p] = { op, applied: false };
    invoked++;
  };

  const finish = (p: number, x: Pending): void => {
    const op = x.op;
    op.complete = time;
    busy[p] = undefined;
    if (!x.applied) {
      if (op.f !== 'get' && rng.chance(failRate / (failRate + infoRate))) {
        op.outcome = 'fail';
        op.error = 'unavailable';
        return;
      }
      op.outcome = 'info';
      if (op.f !== 'get') ghosts.push(x);
      return;
    }
    if (rng.chance(infoRate)) {
      // Took effect, but the answer was lost: a read learns nothing, a write is indeterminate.
      op.outcome = op.f === 'get' ? 'fail' : 'info';
      if (op.f === 'get') op.error = 'timeout';
      return;
    }
    const out = x.outcome!;
    op.outcome = out.outcome;
    if (out.error !== undefined) op.error = out.error;
    if (out.result !== undefined && Object.keys(out.result).length > 0) op.result = out.result;
    if (op.f === 'get') op.value = out.value ?? null;
  };
  while (invoked < o.ops || busy.some((b) => b !== undefined)) {
    time += 1 + rng.int(3);
    if (ghosts.length > 0 && rng.chance(0.05)) {
      const i = rng.int(ghosts.length);
      const g = ghosts[i]!;
      ghosts.splice(i, 1);
      if (rng.chance(0.5)) apply(g, undefined);
      continue;
    }
    const p = rng.int(o.processes);
    const x = busy[p];
    if (x === undefined) {
      if (invoked < o.ops) invoke(p);
      continue;
    }
    const timeoutOrFail = infoRate + (x.op.f === 'get' ? 0 : failRate);
    if (!x.applied) {
      if (rng.chance(timeoutOrFail)) finish(p, x);
      else apply(x, p);
    } else finish(p, x);
  }
  // Timed-out writes still in flight apply now or never.
  for (const g of ghosts) if (rng.chance(0.5)) apply(g, undefined);
  const final = new Map<string, string | null>();
  for (const k of keys) final.set(k, store.get(k)?.value ?? null);
  return { history, final };
}

/** A described change to one operation of a history. */
export interface Mutation {
  history: Operation[];
  /** The changed operation's id. */
  id: number;
  description: string;
}

/**
 * Changes one observation: a get's value (to another value written to the key, or absent),
 * a write's reported index, a 412's reported modIndex, or a successful cas into a
 * precondition failure. Undefined when the history has nothing to change.
 */
export function mutate(history: readonly Operation[], rng: Rng): Mutation | undefined {
  const candidates = history.filter(
    (o) =>
      o.outcome === 'ok' ||
      (o.outcome === 'fail' && o.error === 'precondition' && o.result?.modIndex !== undefined),
  );
  if (candidates.length === 0) return undefined;
  const target = rng.pick(candidates);
  const copy = { ...target, ...(target.result ? { result: { ...target.result } } : {}) };
  const others = history.filter(
    (o) => o.key === target.key && (o.f === 'put' || o.f === 'cas') && o.value !== target.value,
  );
  let description: string;
  if (copy.f === 'get') {
    // Another value written to the key; sometimes absent instead (when it was present).
    const absent = others.length === 0 || (copy.value !== null && rng.chance(0.2));
    const v = absent ? null : rng.pick(others).value!;
    if (v === copy.value) return undefined;
    description = `get #${copy.id} observes ${JSON.stringify(v)} instead of ${JSON.stringify(copy.value)}`;
    copy.value = v;
    if (copy.result) {
      delete copy.result.modIndex;
      if (Object.keys(copy.result).length === 0) delete copy.result;
    }
  } else if (copy.outcome === 'fail') {
    const m = copy.result!.modIndex!;
    const changed = m === 0 ? 1 + rng.int(5) : rng.chance(0.5) ? 0 : m + 1 + rng.int(3);
    description = `412 #${copy.id} reports modIndex ${changed} instead of ${m}`;
    copy.result!.modIndex = changed;
  } else if (copy.f === 'cas' && rng.chance(0.5)) {
    description = `cas #${copy.id} reports a precondition failure although it applied`;
    copy.outcome = 'fail';
    copy.error = 'precondition';
    delete copy.result;
  } else if (copy.result?.index !== undefined) {
    const idx = copy.result.index;
    const changed = rng.chance(0.5) ? Math.max(1, idx - 1 - rng.int(5)) : idx + 1 + rng.int(5);
    if (changed === idx) return undefined;
    description = `${copy.f} #${copy.id} reports index ${changed} instead of ${idx}`;
    copy.result.index = changed;
  } else return undefined;
  return { history: history.map((o) => (o.id === copy.id ? copy : o)), id: copy.id, description };
}
