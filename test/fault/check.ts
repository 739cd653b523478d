import { formatOp, validateHistory, type HistoryProblem } from './checker/history.js';
import {
  checkLinearizable,
  formatResult,
  type CheckOptions,
  type CheckResult,
} from './checker/linearizable.js';
import { checkLostWrites, type FinalRead, type LostWriteProblem } from './checker/lost-writes.js';
import type { RecordedOp } from './history-recorder.js';

/**
 * Everything the suite checks about one history (the adapter between the runner and the
 * checker in `checker/`):
 *
 * - **linearizability** of every key (the final read-back is part of the history, so every
 *   acknowledged write must be the final value or be overwritten by a write that can be
 *   ordered after it);
 * - **lost acknowledged writes**, directly from the final reads (a second, simpler judge
 *   whose message names the lost write);
 * - **log indexes acknowledged twice**: every acknowledged write reports the log index that
 *   applied it, and two different writes can never be applied at the same index; the same
 *   index twice means an acknowledged entry was overwritten (a lost write the per-key checks
 *   may not see when the two writes are on different keys).
 *
 * Divergent replicas are compared by the runner (not from the history).
 */

export interface CheckOutcome {
  /**
   * false: a violation; 'unknown': the search ran out of budget somewhere, nothing failed.
   * (A malformed history is the recorder's bug, reported in `malformed`, not a violation.)
   */
  valid: boolean | 'unknown';
  malformed: HistoryProblem[];
  linearizable: CheckResult;
  lostWrites: LostWriteProblem[];
  duplicateIndexes: string[];
  /** Human-readable report. */
  text: string;
}

/** The final reads in a history: the last read of each key by the read-back (`via: 'final'`). */
export function finalReadsOf(history: readonly RecordedOp[]): Map<string, FinalRead> {
  const out = new Map<string, FinalRead>();
  for (const o of history) {
    if (o.via !== 'final' || o.f !== 'get' || o.outcome !== 'ok') continue;
    const value = o.value ?? null;
    out.set(
      o.key,
      o.result?.modIndex !== undefined && value !== null ? { value, modIndex: o.result.modIndex } : { value },
    );
  }
  return out;
}

/** Acknowledged writes that report the same log index. */
export function duplicateIndexes(history: readonly RecordedOp[]): string[] {
  const byIndex = new Map<number, RecordedOp>();
  const out: string[] = [];
  for (const o of history) {
    if (o.outcome !== 'ok' || o.f === 'get' || o.result?.index === undefined) continue;
    const prev = byIndex.get(o.result.index);
    if (prev && prev.id !== o.id) {
      out.push(
        `log index ${o.result.index} acknowledged for two writes: ${formatOp(prev)} and ${formatOp(o)} — one of them was overwritten after it was acknowledged`,
      );
    } else byIndex.set(o.result.index, o);
  }
  return out;
}

function lostWritesOf(history: readonly RecordedOp[]): LostWriteProblem[] {
  return checkLostWrites(history, finalReadsOf(history));
}

export function checkHistory(history: readonly RecordedOp[], options: CheckOptions = {}): CheckOutcome {
  const malformed = validateHistory(history);
  const linearizable = checkLinearizable(history, { maxWitnesses: 3, ...options });
  const lostWrites = lostWritesOf(history);
  const dups = duplicateIndexes(history);
  const violation = linearizable.valid === false || lostWrites.length > 0 || dups.length > 0;
  const valid = violation ? false : linearizable.valid === 'unknown' ? 'unknown' : true;
  const lines: string[] = [];
  if (malformed.length > 0) {
    lines.push(`malformed history: ${malformed.length} problem(s)`);
    for (const p of malformed.slice(0, 10)) lines.push(`  #${p.id ?? '?'}: ${p.message}`);
  }
  lines.push(formatResult(linearizable));
  // Where the witnesses' operations went (the checker shows only what they did).
  const byId = new Map(history.map((o) => [o.id, o]));
  const where = (id: number): string | undefined => {
    const o = byId.get(id);
    if (!o) return undefined;
    const parts = [
      o.via === 'raw' ? `raw HTTP to ${o.node ?? '?'}` : o.via === 'final' ? 'final read-back' : 'KvClient',
    ];
    if (o.consistency) parts.push(o.consistency);
    if (o.code) parts.push(`answered ${o.code}`);
    return `#${id}: ${parts.join(', ')}`;
  };
  const ids = new Set<number>();
  for (const w of linearizable.witnesses) for (const o of w.ops) ids.add(o.id);
  for (const p of lostWritesOf(history)) if (p.op) ids.add(p.op.id);
  if (ids.size > 0)
    lines.push(
      `  via: ${[...ids]
        .sort((a, b) => a - b)
        .map(where)
        .filter(Boolean)
        .join('; ')}`,
    );
  const acked = history.filter(
    (o) => o.outcome === 'ok' && o.f !== 'get' && o.result?.deleted !== false,
  ).length;
  if (lostWrites.length === 0) lines.push(`lost writes: none (${acked} acknowledged writes)`);
  else {
    lines.push(`lost writes: ${lostWrites.length} problem(s) (${acked} acknowledged writes)`);
    for (const p of lostWrites.slice(0, 10)) lines.push(`  ${p.kind}: ${p.message}`);
  }
  if (dups.length > 0) {
    lines.push(`log indexes acknowledged twice: ${dups.length}`);
    for (const d of dups.slice(0, 10)) lines.push(`  ${d}`);
  }
  return { valid, malformed, linearizable, lostWrites, duplicateIndexes: dups, text: lines.join('\n') };
}
