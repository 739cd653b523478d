import { step, type KeyModel, type ModelOp, type RegisterState } from './model.js';

/**
 * The definition of linearizability, checked by plain enumeration, as a reference for the
 * search on small histories (at most 30 operations): is there an order of the required
 * operations and some of the optional ones that respects real time (an operation that
 * completed before another began comes first) and that the model accepts step by step?
 *
 * Each operation is decided in turn: taken next (if everything that must precede it is
 * decided and the model accepts it) or, if optional, dropped. Failed (decided set, state)
 * pairs are remembered; nothing cleverer.
 */
export function linearizableByBruteForce(ops: readonly ModelOp[], km: KeyModel): boolean {
  if (ops.length > 30) throw new Error('brute force is for at most 30 operations');
  const all = (1 << ops.length) - 1;
  let requiredMask = 0;
  for (let i = 0; i < ops.length; i++) if (ops[i]!.required) requiredMask |= 1 << i;
  // mustPrecede[i]: the operations that completed before operation i began.
  const mustPrecede = ops.map((o) => {
    let m = 0;
    for (let j = 0; j < ops.length; j++) if (ops[j]!.complete < o.invoke) m |= 1 << j;
    return m;
  });
  const failed = new Set<string>();
  const go = (decided: number, s: RegisterState): boolean => {
    if ((decided & requiredMask) === requiredMask) return true;
    const key = `${decided},${s.v},${s.m},${s.l}`;
    if (failed.has(key)) return false;
    for (let i = 0; i < ops.length; i++) {
      const bit = 1 << i;
      if (decided & bit) continue;
      const o = ops[i]!;
      if (!o.required && go(decided | bit, s)) return true;
      if ((mustPrecede[i]! & ~decided & all) !== 0) continue;
      const next = step(s, o, km.known);
      if (typeof next !== 'number' && go(decided | bit, next)) return true;
    }
    failed.add(key);
    return false;
  };
  return go(0, km.initial);
}
