/**
 * Linearizability checker for kv histories (issue 7): is there an order of the operations,
 * consistent with real time, that obeys the sequential specification of every key?
 *
 * Files: history.ts (the record format, JSON lines), model.ts (the specification),
 * search.ts (the search), witness.ts (shrinking and explaining violations), lost-writes.ts
 * (final read-back checks), random-history.ts and brute-force.ts (for the tests).
 *
 * ## Model (model.ts)
 * Each key is a register with etcd-style modification indexes, state `{value, modIndex,
 * lastIndex}`. An ok put/cas with `result.index = i` sets `value` and `modIndex = i`; a cas
 * with `prevIndex = p` applies only when `modIndex === p`; a delete needs the key present
 * (and `modIndex === prevIndex` if given) and resets `modIndex` to 0, so "prevIndex=0 ⇔
 * absent" as in the server. A get observes the value (absent for 404) and, if recorded, the
 * modIndex. A 412 is an observation too, not a no-op: legal only where `modIndex ≠ prevIndex`
 * (and equal to the modIndex it reported, if recorded). A delete that found nothing
 * observes absence. Writes are applied in log order, so a write reporting index `i` must
 * come after every write reporting a lower one (`lastIndex`): an acknowledged index that
 * contradicts real time is a violation too.
 *
 * ## Indeterminate operations
 * An `info` write completes at +infinity: it may take effect anywhere after its invoke, or
 * never; the search succeeds once every required (ok, or observing fail) operation is
 * linearized. If it took effect, nobody learnt its log index: `modIndex` becomes `unknown`,
 * a symbolic index that is above `lastIndex` and none of the indexes reported anywhere in
 * the history (log indexes are unique across keys). A later get/412/cas naming a modIndex
 * may match it if those rules allow, which reveals it. Precision lost: different unknown
 * indexes are not told apart, and a 412 that did not record its modIndex never refutes an
 * unknown one (the kv server always sends it). Reads without an answer and failures that
 * observe nothing are dropped, and so are indeterminate writes that no operation could have
 * noticed (`mayLeaveOut`).
 *
 * ## Search (search.ts)
 * Wing & Gong's algorithm with Lowe's memoization, as in Porcupine: the calls and returns of
 * one key, sorted by time (a call before a return at the same timestamp, so intervals that
 * touch count as concurrent), in a doubly linked list. Walk from the head: a call whose
 * operation the model accepts in the current state is linearized — unlinked with its
 * return, pushed on a stack — unless the configuration (linearized set, state) is in the
 * cache; reaching a return means that operation missed its deadline: pop the last choice
 * and try the next call after it. Additions for indeterminate writes, each argued where it
 * is implemented:
 * - they wait outside the list and are tried only when the list is stuck, so the search
 *   never rescans them and explores configurations without them first;
 * - the cache prunes a configuration that only adds optional operations to one already
 *   explored with the same state (subsumption: leaving them out is always allowed);
 * - interchangeable ones (same effect as far as any read can tell: values no read observes
 *   are merged) are taken in invoke order only (symmetry): k of them cost k+1, not 2^k;
 * - a blind write (put, or optional delete, without prevIndex) never directly follows one
 *   (partial-order reduction: it would overwrite it unseen).
 * Keys are independent (P-compositionality: a history is linearizable iff every key's
 * sub-history is), so each is searched alone within its own budget (`maxSteps`,
 * `timeLimitMs`, `maxCacheBytes`); an exhausted budget answers `'unknown'`, never a hang.
 * brute-force.ts is the reference the tests compare the search with on small histories.
 *
 * ## Witness (witness.ts)
 * For a key that fails, a small set of its operations that cannot be linearized: a window
 * of the operations just before where the search got stuck (or else the shortest failing
 * prefix), then delta debugging (drop chunks while it still fails), within `shrinkTimeMs`.
 * A candidate never invents a violation: it is checked with the key's other writes that
 * overlap it as indeterminate (they may have taken effect, or not), and with every state
 * the writes that finished before it could have left as a possible start. The writes whose
 * values or indexes the witness's reads saw stay in it, for readability (a stale read shows
 * both writes). The explanation replays the longest legal order found and says why each
 * operation that could come next cannot.
 *
 * ## Limits
 * Exponential in the worst case: many mutually concurrent operations on one key, or writes
 * whose order nothing pins down (no reported index) read in conflicting orders. With
 * indexes reported, time grows about quadratically with a key's operations when many are
 * indeterminate (10,000 operations with 5% info on one key: about 1 s), so spread a run over
 * many keys. Written values must be unique per write for lost writes and stale reads to be
 * visible (duplicates make the checker weaker, never wrong). Cross-key facts (one log index
 * reported for writes to two keys) are outside a per-key check. Single-key operations only.
 * Real time is what the recorder wrote: `invoke` taken before the request is sent and
 * `complete` after the answer arrives, on one clock (e.g. the runner's `performance.now()`),
 * or the checker will see orders that did not happen. A witness is as small as shrinking
 * got within `shrinkTimeMs`; `minimal` says whether no single operation can be dropped.
 *
 * @example
 * ```ts
 * const result = checkLinearizable(readHistory('run/history.jsonl'));
 * if (result.valid !== true) console.log(formatResult(result));
 * ```
 *
 * @module
 */
import { formatOp, type Operation } from './history.js';
import { compileKey } from './model.js';
import { search } from './search.js';
import { findWitness, type Witness } from './witness.js';

export type { Witness } from './witness.js';

/** Options of {@link checkLinearizable}. */
export interface CheckOptions {
  /** Search steps per key before answering 'unknown' (a step is ~50–100 ns). Default 50,000,000. */
  maxSteps?: number;
  /** Wall-clock time per key before answering 'unknown'. Default 10,000 ms. */
  timeLimitMs?: number;
  /** Memory of the search's cache per key before answering 'unknown'. Default 512 MB. */
  maxCacheBytes?: number;
  /** Time spent shrinking each witness. Default 2,000 ms. */
  shrinkTimeMs?: number;
  /** Witnesses to build (one per invalid key, in key order). Default 1. */
  maxWitnesses?: number;
  /** The state of keys before the history began (default: every key absent). */
  initial?: ReadonlyMap<string, { value: string | null; modIndex: number }>;
}

/** The verdict for one key. */
export interface KeyResult {
  key: string;
  valid: boolean | 'unknown';
  /** Operations searched (after dropping those that constrain nothing). */
  ops: number;
  /** Search steps taken. */
  steps: number;
  ms: number;
  /** Why the verdict is 'unknown'. */
  budget?: 'steps' | 'time' | 'memory';
}

/** The verdict for a whole history. */
export interface CheckResult {
  /** false if any key is not linearizable; 'unknown' if none is false but a budget ran out. */
  valid: boolean | 'unknown';
  /** One entry per key, in key order. */
  perKey: KeyResult[];
  /** The first witness (of the first invalid key in key order). */
  witness?: Witness;
  /** Up to `maxWitnesses` witnesses. */
  witnesses: Witness[];
  /** Operations in the history. */
  ops: number;
  ms: number;
}

const DEFAULTS = {
  maxSteps: 50_000_000,
  timeLimitMs: 10_000,
  maxCacheBytes: 512 * 1024 * 1024,
  shrinkTimeMs: 2_000,
  maxWitnesses: 1,
};

/**
 * Checks a history for linearizability, key by key.
 *
 * @example
 * ```ts
 * const r = checkLinearizable(history, { timeLimitMs: 5_000 });
 * expect(r.valid, formatResult(r)).toBe(true);
 * ```
 */
export function checkLinearizable(history: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const start = performance.now();
  const opts = { ...DEFAULTS, ...options };
  const known = knownIndexes(history);
  const byKey = new Map<string, Operation[]>();
  for (const o of history) {
    let list = byKey.get(o.key);
    if (!list) byKey.set(o.key, (list = []));
    list.push(o);
  }
  const perKey: KeyResult[] = [];
  const witnesses: Witness[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const prepared = compileKey(key, byKey.get(key)!, known, opts.initial?.get(key));
    const t0 = performance.now();
    const r = search(prepared.ops, prepared.km, {
      maxSteps: opts.maxSteps,
      deadline: t0 + opts.timeLimitMs,
      maxCacheBytes: opts.maxCacheBytes,
    });
    const kr: KeyResult = {
      key,
      valid: r.valid,
      ops: prepared.ops.length,
      steps: r.steps,
      ms: performance.now() - t0,
    };
    if (r.budget !== undefined) kr.budget = r.budget;
    perKey.push(kr);
    if (r.valid === false && witnesses.length < opts.maxWitnesses) {
      witnesses.push(
        findWitness(prepared, {
          maxSteps: opts.maxSteps,
          maxCacheBytes: opts.maxCacheBytes,
          shrinkTimeMs: opts.shrinkTimeMs,
        }),
      );
    }
  }
  const valid = perKey.some((k) => k.valid === false)
    ? false
    : perKey.some((k) => k.valid === 'unknown')
      ? 'unknown'
      : true;
  const result: CheckResult = {
    valid,
    perKey,
    witnesses,
    ops: history.length,
    ms: performance.now() - start,
  };
  if (witnesses[0]) result.witness = witnesses[0];
  return result;
}

/** Every log index some operation reported: an indeterminate write's index is none of these. */
function knownIndexes(history: readonly Operation[]): Set<number> {
  const known = new Set<number>();
  for (const o of history)
    if (o.outcome !== 'info' && o.result?.index !== undefined) known.add(o.result.index);
  return known;
}

// ------------------------------------------------------------------ reporting

/** A readable report: the verdict, the witness ops one per line, and the explanation. */
export function formatResult(r: CheckResult): string {
  const keys = r.perKey.length;
  const bad = r.perKey.filter((k) => k.valid === false);
  const unknown = r.perKey.filter((k) => k.valid === 'unknown');
  const stats = `${r.ops} ops, ${keys} keys, ${r.ms.toFixed(0)} ms`;
  const lines: string[] = [];
  if (r.valid === true) return `linearizable: yes (${stats})`;
  if (r.valid === false)
    lines.push(`linearizable: NO — ${bad.length} of ${keys} keys violate it: ${names(bad)} (${stats})`);
  else lines.push(`linearizable: unknown — the search budget ran out (${stats})`);
  if (unknown.length > 0)
    lines.push(
      `undecided keys: ${unknown.map((k) => `${JSON.stringify(k.key)} (${k.budget} budget, ${k.ops} ops)`).join(', ')}`,
    );
  for (const w of r.witnesses) {
    lines.push('');
    lines.push(
      `witness on key ${JSON.stringify(w.key)}: ${w.ops.length} operations${w.minimal ? ' (minimal)' : ' (shrinking ran out of time)'}`,
    );
    for (const o of w.ops) lines.push(`  ${formatOp(o)}`);
    lines.push(w.explanation);
  }
  return lines.join('\n');
}

function names(ks: readonly KeyResult[]): string {
  const shown = ks.slice(0, 10).map((k) => JSON.stringify(k.key));
  return shown.join(', ') + (ks.length > 10 ? `, … (${ks.length - 10} more)` : '');
}
