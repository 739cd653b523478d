import type { Operation } from './history.js';

/**
 * Lost acknowledged writes, judged from the state read back after the faults healed.
 *
 * Two ways to use the final reads:
 * - {@link checkLostWrites}: cheap necessary conditions, key by key, with a direct diagnosis
 *   ("acknowledged write #12 is gone: the final value was written by #7, which finished
 *   before #12 began");
 * - {@link appendFinalReads}: the final reads as ordinary gets after everything else, so the
 *   linearizability search checks them with the full model (the stronger check).
 *
 * @module
 */

/** What a final read of a key saw: its value (null: absent) and, if recorded, its modIndex. */
export interface FinalRead {
  value: string | null;
  modIndex?: number;
}

/** A final read as given by the caller: a value (null: absent) or a {@link FinalRead}. */
export type FinalReadInput = string | null | FinalRead;

/** One problem found by {@link checkLostWrites}. */
export interface LostWriteProblem {
  key: string;
  /**
   * `lost-write`: an acknowledged write is neither the final value nor followed by any write
   * that could have replaced it. `never-written`: the final value was written by no operation
   * that may have applied. `failed-write-visible`: the final value is that of a write that
   * definitely failed.
   */
  kind: 'lost-write' | 'never-written' | 'failed-write-visible';
  message: string;
  /** The write concerned (the lost one, or the failed one that is visible). */
  op?: Operation;
}

function normalize(r: FinalReadInput): FinalRead {
  return r === null || typeof r === 'string' ? { value: r } : r;
}

const endOf = (o: Operation): number => (o.outcome === 'info' ? Infinity : (o.complete ?? Infinity));
const isWrite = (o: Operation): boolean => o.f === 'put' || o.f === 'cas' || o.f === 'delete';
/** A write that did take effect, or may have. (A delete that found nothing changed nothing.) */
const mayHaveApplied = (o: Operation): boolean =>
  isWrite(o) && (o.outcome === 'info' || (o.outcome === 'ok' && o.result?.deleted !== false));
const acknowledged = (o: Operation): boolean =>
  isWrite(o) && o.outcome === 'ok' && o.result?.deleted !== false;
/** `a` certainly took effect before `b` began (real-time order), so it cannot come after `b`. */
const before = (a: Operation, b: Operation): boolean => endOf(a) < b.invoke;

/**
 * Checks the keys in `finalReads` (read after healing, once nothing is in flight) against the
 * history: the final value must come from a write that may have applied, and that write must
 * be able to come after every acknowledged write of the key (for an absent key: some delete
 * must). Keys not in `finalReads` are not checked.
 */
export function checkLostWrites(
  history: readonly Operation[],
  finalReads: ReadonlyMap<string, FinalReadInput>,
): LostWriteProblem[] {
  const byKey = new Map<string, Operation[]>();
  for (const o of history) {
    if (!isWrite(o) || !finalReads.has(o.key)) continue;
    let list = byKey.get(o.key);
    if (!list) byKey.set(o.key, (list = []));
    list.push(o);
  }
  const problems: LostWriteProblem[] = [];
  for (const [key, input] of [...finalReads].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const { value } = normalize(input);
    const writes = byKey.get(key) ?? [];
    const acked = writes.filter(acknowledged);
    if (value !== null) {
      const sources = writes.filter((o) => o.f !== 'delete' && o.value === value);
      const live = sources.filter(mayHaveApplied);
      if (live.length === 0) {
        const failed = sources[0];
        problems.push(
          failed
            ? {
                key,
                kind: 'failed-write-visible',
                message: `key ${JSON.stringify(key)} ends with ${JSON.stringify(value)}, written by #${failed.id}, which definitely failed`,
                op: failed,
              }
            : {
                key,
                kind: 'never-written',
                message: `key ${JSON.stringify(key)} ends with ${JSON.stringify(value)}, which no operation wrote`,
              },
        );
        continue;
      }
      // The final value's write must be last: it cannot precede an acknowledged write.
      for (const w of acked) {
        if (live.includes(w)) continue;
        if (live.every((src) => before(src, w))) {
          problems.push({
            key,
            kind: 'lost-write',
            message: `acknowledged write #${w.id} (${describe(w)}) on key ${JSON.stringify(key)} is lost: the final value ${JSON.stringify(value)} was written by #${live.map((s) => s.id).join('/#')}, which finished before #${w.id} began`,
            op: w,
          });
        }
      }
    } else {
      // Absent at the end: unless nothing acknowledged ever wrote it, some delete comes last.
      const puts = acked.filter((o) => o.f !== 'delete');
      if (puts.length === 0) continue;
      const deletes = writes.filter((o) => o.f === 'delete' && mayHaveApplied(o));
      if (deletes.some((d) => puts.every((w) => !before(d, w)))) continue;
      const orphans = puts.filter((w) => deletes.every((d) => before(d, w)));
      for (const w of orphans.length > 0 ? orphans : [puts.reduce((a, b) => (b.invoke > a.invoke ? b : a))]) {
        problems.push({
          key,
          kind: 'lost-write',
          message: `acknowledged write #${w.id} (${describe(w)}) on key ${JSON.stringify(key)} is lost: the key ends absent and ${deletes.length === 0 ? 'no delete of it may have applied' : 'no delete of it could come after every acknowledged write'}`,
          op: w,
        });
      }
    }
  }
  return problems;
}

function describe(o: Operation): string {
  return o.f === 'delete' ? 'delete' : `${o.f} ${JSON.stringify(o.value)}`;
}

/** Options of {@link appendFinalReads}. */
export interface FinalReadOptions {
  /** The process the reads are attributed to. Default `'final'`. */
  process?: number | string;
  /** When the reads were invoked. Default: just after every recorded timestamp. */
  at?: number;
}

/**
 * The history followed by one ok get per key in `finalReads`, invoked after every recorded
 * operation finished (indeterminate operations stay concurrent with them: they may still
 * apply later, or never). Check the result with `checkLinearizable` to hold the final state
 * to the full model: every acknowledged write must be the final value or be overwritten by a
 * write that can be ordered after it.
 */
export function appendFinalReads(
  history: readonly Operation[],
  finalReads: ReadonlyMap<string, FinalReadInput>,
  options: FinalReadOptions = {},
): Operation[] {
  let last = -Infinity;
  let maxId = -1;
  for (const o of history) {
    last = Math.max(last, o.invoke, o.complete ?? -Infinity);
    maxId = Math.max(maxId, o.id);
  }
  const at = options.at ?? (Number.isFinite(last) ? last + 1 : 0);
  const out = [...history];
  for (const [key, input] of [...finalReads].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const r = normalize(input);
    const op: Operation = {
      id: ++maxId,
      process: options.process ?? 'final',
      key,
      f: 'get',
      value: r.value,
      invoke: at,
      complete: at + 1,
      outcome: 'ok',
    };
    if (r.modIndex !== undefined && r.value !== null) op.result = { modIndex: r.modIndex };
    out.push(op);
  }
  return out;
}
