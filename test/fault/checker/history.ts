import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';

/**
 * The history format of the fault-injection runs: one record per client operation against
 * the kv HTTP API (DESIGN.md "kv"), written as JSON lines.
 *
 * How a recorder maps `KvClient` (src/client) answers onto records:
 *
 * | call | answer | record |
 * | --- | --- | --- |
 * | `put(k, v)` | `{ index }` | `f: 'put', value: v, outcome: 'ok', result: { index }` |
 * | `cas(k, v, p)` | `{ index }` | `f: 'cas', value: v, prevIndex: p, outcome: 'ok', result: { index }` |
 * | `cas(k, v, p)` | `PreconditionFailedError` | `outcome: 'fail', error: 'precondition', result: { modIndex: e.modIndex }` |
 * | `get(k)` | `{ value, modIndex }` | `f: 'get', value: text, outcome: 'ok', result: { modIndex }` |
 * | `get(k)` | `undefined` (404) | `f: 'get', value: null, outcome: 'ok'` |
 * | `delete(k)` | `{ deleted: true, index }` | `f: 'delete', outcome: 'ok', result: { index }` |
 * | `delete(k)` | `{ deleted: false }` (absent) | `f: 'delete', outcome: 'ok', result: { deleted: false }` |
 * | any write | `TIMEOUT`, `STOPPED`, `INTERNAL`, `BAD_RESPONSE` | `outcome: 'info'` (may or may not have applied) |
 * | any write | other errors (`UNAVAILABLE`, `NO_LEADER`, …) | `outcome: 'fail'` (definitely not applied) |
 * | `get` | any error | `outcome: 'fail'` or `'info'` (a read that returned nothing constrains nothing) |
 *
 * Every written value must be unique in the whole history (the recorder makes it so, e.g.
 * `"<process>-<n>"`): that is what makes lost writes and stale reads visible.
 *
 * @module
 */

/** What an operation did. `cas` is a put with `prevIndex`; a delete may carry `prevIndex` too. */
export type OpKind = 'put' | 'get' | 'delete' | 'cas';

/**
 * `ok`: took effect (writes) or observed something (reads), exactly as `result` says.
 * `fail`: definitely did not take effect. With `error: 'precondition'` (412) or
 * `'not-found'` (404) the failure is itself an observation of the key's state.
 * `info`: indeterminate (timed out): may have taken effect at any point after `invoke`, or
 * never; its completion time counts as +infinity whatever `complete` says.
 */
export type Outcome = 'ok' | 'fail' | 'info';

/** What an `ok` (or observing `fail`) operation answered. */
export interface OpResult {
  /** The log index that applied a write (the kv API's `{ "index": N }`). */
  index?: number;
  /**
   * The key's modification index seen: `X-Mod-Index` of a get, or the current modIndex that a
   * 412 answer reports (0: absent).
   */
  modIndex?: number;
  /** The value a get saw (null: 404). Recorders may also put it in the op's `value`. */
  value?: string | null;
  /** A delete that found the key absent answers `{ deleted: false }`. */
  deleted?: boolean;
}

/** One client operation on one key. */
export interface Operation {
  /** Unique within the history. */
  id: number;
  /** The client that issued it (one operation at a time per process). */
  process: number | string;
  key: string;
  f: OpKind;
  /** The value written (put, cas), or the value a get observed (null: absent). */
  value?: string | null;
  /** The compare-and-set condition on the key's modIndex (cas; optional on delete). 0: only if absent. */
  prevIndex?: number;
  /** When the client sent it (ms or ns; one unit per history). */
  invoke: number;
  /**
   * When the client got the answer. Required for `ok` and `fail`; for `info` it is when the
   * client gave up, shown in reports but treated as +infinity by the checker.
   */
  complete: number | undefined;
  outcome: Outcome;
  /**
   * Why an operation failed. `'precondition'` (412) and `'not-found'` (404) make a failed
   * operation an observation; anything else makes it a no-op the checker drops.
   */
  error?: string;
  result?: OpResult;
}

/** A problem with a record, found by {@link validateHistory}. */
export interface HistoryProblem {
  id: number | undefined;
  message: string;
}

/**
 * Checks the records are well formed: unique ids, times, the fields each kind needs. The
 * checker assumes a valid history; run this first on anything read from disk.
 */
export function validateHistory(history: readonly Operation[]): HistoryProblem[] {
  const problems: HistoryProblem[] = [];
  const ids = new Set<number>();
  const bad = (o: Operation, message: string): void => {
    problems.push({ id: o.id, message });
  };
  for (const o of history) {
    if (!Number.isFinite(o.id)) {
      problems.push({ id: undefined, message: `bad id ${JSON.stringify(o.id)}` });
      continue;
    }
    if (ids.has(o.id)) bad(o, 'duplicate id');
    ids.add(o.id);
    if (typeof o.key !== 'string') bad(o, 'key must be a string');
    if (!['put', 'get', 'delete', 'cas'].includes(o.f)) bad(o, `unknown f ${JSON.stringify(o.f)}`);
    if (!['ok', 'fail', 'info'].includes(o.outcome)) bad(o, `unknown outcome ${JSON.stringify(o.outcome)}`);
    if (!Number.isFinite(o.invoke)) bad(o, 'invoke must be a finite number');
    if (o.outcome !== 'info' && o.complete === undefined) bad(o, `an ${o.outcome} operation needs complete`);
    if (o.complete !== undefined && !(o.complete >= o.invoke)) bad(o, 'complete is before invoke');
    if ((o.f === 'put' || o.f === 'cas') && typeof o.value !== 'string')
      bad(o, `${o.f} needs a string value`);
    if (o.f === 'cas' && !isIndex(o.prevIndex)) bad(o, 'cas needs prevIndex ≥ 0');
    if (o.f === 'delete' && o.prevIndex !== undefined && !isIndex(o.prevIndex))
      bad(o, 'prevIndex must be an integer ≥ 0');
    if (o.f === 'put' && o.prevIndex !== undefined) bad(o, 'a put with prevIndex is a cas: use f "cas"');
    if (o.f === 'get' && o.outcome === 'ok' && observedValue(o) === undefined)
      bad(o, 'an ok get needs the value it saw (null: absent)');
    if (o.outcome === 'fail' && o.error === 'precondition' && o.prevIndex === undefined)
      bad(o, 'a precondition failure needs prevIndex');
    const r = o.result;
    if (r?.index !== undefined && !(isIndex(r.index) && r.index > 0)) bad(o, 'result.index must be > 0');
    if (r?.modIndex !== undefined && !isIndex(r.modIndex)) bad(o, 'result.modIndex must be ≥ 0');
  }
  return problems;
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

/** The value a get observed: `result.value` if given, else `value`; undefined when neither says. */
export function observedValue(o: Operation): string | null | undefined {
  if (o.result?.value !== undefined) return o.result.value;
  return o.value;
}

// ------------------------------------------------------------------ JSON lines

/** One record as one JSON line (`complete` of +infinity or undefined is left out). */
export function formatRecord(o: Operation): string {
  const { complete, ...rest } = o;
  return JSON.stringify(complete === undefined || !Number.isFinite(complete) ? rest : { ...rest, complete });
}

/** Parses JSON lines; blank lines are skipped; a bad line throws naming its line number. */
export function parseHistory(text: string): Operation[] {
  const out: Operation[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      throw new Error(`history line ${i + 1}: ${(e as Error).message}`, { cause: e });
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new Error(`history line ${i + 1}: not a JSON object`);
    const r = raw as Operation & { complete?: number | null };
    out.push({ ...r, complete: typeof r.complete === 'number' ? r.complete : undefined });
  }
  return out;
}

/** The whole history as JSON lines (one trailing newline). */
export function stringifyHistory(history: readonly Operation[]): string {
  return history.map((o) => formatRecord(o) + '\n').join('');
}

/** Reads a JSON-lines history file. */
export function readHistory(path: string): Operation[] {
  return parseHistory(readFileSync(path, 'utf8'));
}

/** Writes a whole history to a JSON-lines file (replacing it). */
export function writeHistory(path: string, history: readonly Operation[]): void {
  writeFileSync(path, stringifyHistory(history));
}

/** Appends records to a JSON-lines file, for a recorder that writes as it goes. */
export function appendHistory(path: string, ops: readonly Operation[]): void {
  appendFileSync(path, stringifyHistory(ops));
}

// ------------------------------------------------------------------ display

/**
 * One operation on one line, e.g.
 * `#12 p3 cas k1 "v7" prevIndex=40 → fail precondition modIndex=45  [100, 120]`.
 */
export function formatOp(o: Operation): string {
  const args: string[] = [];
  if (o.f === 'put' || o.f === 'cas') args.push(JSON.stringify(o.value));
  if (o.prevIndex !== undefined) args.push(`prevIndex=${o.prevIndex}`);
  const res: string[] = [o.outcome];
  if (o.outcome === 'fail' && o.error !== undefined) res.push(o.error);
  if (o.f === 'get' && o.outcome === 'ok') {
    const v = observedValue(o);
    res.push(v === null ? 'absent' : JSON.stringify(v));
  }
  if (o.result?.deleted === false) res.push('absent');
  if (o.result?.index !== undefined) res.push(`index=${o.result.index}`);
  if (o.result?.modIndex !== undefined) res.push(`modIndex=${o.result.modIndex}`);
  const end =
    o.outcome === 'info'
      ? `∞)${o.complete !== undefined ? ` gave up at ${o.complete}` : ''}`
      : `${o.complete ?? '?'}]`;
  const head = [
    `#${o.id}`,
    typeof o.process === 'number' ? `p${o.process}` : o.process,
    o.f,
    o.key,
    ...args,
  ].join(' ');
  return `${head} → ${res.join(' ')}  [${o.invoke}, ${end}`;
}
