import { describe, expect, it } from 'vitest';
import type { Operation, OpResult } from './history.js';
import { checkLinearizable, formatResult, type CheckResult } from './linearizable.js';
import { appendFinalReads } from './lost-writes.js';
import { generateHistory } from './random-history.js';

/** A tiny history builder: ids in call order, one line per operation. */
class H {
  readonly ops: Operation[] = [];
  private add(o: Omit<Operation, 'id' | 'key'> & { key?: string }): number {
    const id = this.ops.length;
    this.ops.push({ key: 'x', ...o, id });
    return id;
  }
  put(p: number, value: string, [invoke, complete]: [number, number?], index?: number, key?: string): number {
    return this.add({
      process: p,
      f: 'put',
      value,
      invoke,
      complete,
      outcome: index === undefined ? 'info' : 'ok',
      ...(index !== undefined ? { result: { index } } : {}),
      ...(key !== undefined ? { key } : {}),
    });
  }
  cas(
    p: number,
    value: string,
    prevIndex: number,
    [invoke, complete]: [number, number?],
    answer: { index: number } | { failed: true; modIndex?: number } | 'info',
  ): number {
    const base = { process: p, f: 'cas' as const, value, prevIndex, invoke, complete };
    if (answer === 'info') return this.add({ ...base, outcome: 'info' });
    if ('index' in answer) return this.add({ ...base, outcome: 'ok', result: { index: answer.index } });
    const result: OpResult = answer.modIndex !== undefined ? { modIndex: answer.modIndex } : {};
    return this.add({ ...base, outcome: 'fail', error: 'precondition', result });
  }
  get(p: number, value: string | null, [invoke, complete]: [number, number], modIndex?: number): number {
    return this.add({
      process: p,
      f: 'get',
      value,
      invoke,
      complete,
      outcome: 'ok',
      ...(modIndex !== undefined ? { result: { modIndex } } : {}),
    });
  }
  del(
    p: number,
    [invoke, complete]: [number, number?],
    answer: { index: number } | 'absent' | 'info',
  ): number {
    const base = { process: p, f: 'delete' as const, invoke, complete };
    if (answer === 'info') return this.add({ ...base, outcome: 'info' });
    if (answer === 'absent') return this.add({ ...base, outcome: 'ok', result: { deleted: false } });
    return this.add({ ...base, outcome: 'ok', result: { index: answer.index } });
  }
}

const check = (ops: readonly Operation[]): CheckResult => checkLinearizable(ops, { shrinkTimeMs: 1_000 });

function expectValid(h: H): void {
  const r = check(h.ops);
  expect(r.valid, formatResult(r)).toBe(true);
}

function expectInvalid(h: H, witness: number[]): CheckResult {
  const r = check(h.ops);
  expect(r.valid, formatResult(r)).toBe(false);
  expect(r.witness?.key).toBe('x');
  expect(r.witness?.ops.map((o) => o.id).sort((a, b) => a - b)).toEqual(witness);
  expect(r.witness?.minimal).toBe(true);
  return r;
}

describe('linearizable histories', () => {
  it('concurrent puts and gets with overlapping intervals', () => {
    const h = new H();
    h.put(1, 'a', [0, 10], 2); // applied second
    h.put(2, 'b', [1, 12], 1); // applied first
    h.get(3, 'b', [2, 4], 1); // between the two
    h.get(4, null, [0, 3]); // before both
    h.get(3, 'a', [5, 20], 2);
    h.get(4, 'a', [13, 14]);
    expectValid(h);
  });

  it('a cas chain, with a cas that lost the race (412 as an observation)', () => {
    const h = new H();
    h.cas(1, 'a', 0, [0, 2], { index: 1 }); // create only if absent
    h.cas(2, 'z', 0, [1, 3], { failed: true, modIndex: 1 });
    h.cas(1, 'b', 1, [4, 6], { index: 2 });
    h.cas(2, 'c', 2, [5, 9], { index: 3 });
    h.cas(3, 'd', 2, [5, 10], { failed: true, modIndex: 3 });
    h.cas(3, 'e', 1, [11, 12], { failed: true }); // no modIndex recorded
    h.get(1, 'c', [11, 13], 3);
    expectValid(h);
  });

  it('a delete resets modIndex to 0, so prevIndex=0 creates again', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.del(1, [2, 3], { index: 2 });
    h.del(2, [4, 5], 'absent');
    h.cas(1, 'b', 0, [6, 7], { index: 3 });
    h.get(2, 'b', [8, 9], 3);
    expectValid(h);
  });

  it('an indeterminate write that took effect, later revealed by a read', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(2, 'b', [2]); // timed out
    h.get(3, 'b', [20, 21], 7); // reveals its index
    h.cas(3, 'c', 7, [22, 23], { index: 8 });
    h.get(1, 'c', [24, 25], 8);
    expectValid(h);
  });

  it('an indeterminate write that never took effect', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(2, 'b', [2]);
    h.cas(2, 'c', 1, [3], 'info');
    h.del(3, [4], 'info');
    h.get(3, 'a', [30, 31], 1);
    h.cas(1, 'd', 1, [32, 33], { index: 9 });
    expectValid(h);
  });

  it('an indeterminate write that took effect long after the client gave up', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(2, 'b', [2, 5]); // gave up at 5 (complete is only shown)
    h.get(1, 'a', [10, 11]);
    h.get(1, 'b', [100, 101]);
    expectValid(h);
  });

  it('keys are independent', () => {
    const h = new H();
    h.put(1, 'a', [0, 10], 1, 'k1');
    h.put(2, 'b', [0, 10], 2, 'k2');
    h.get(3, 'a', [11, 12], undefined as never);
    h.ops[2]!.key = 'k1';
    expectValid(h);
  });
});

describe('violations, with a small witness', () => {
  it('stale read: a get after a completed put returns the older value', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(1, 'b', [2, 3], 2);
    h.get(2, 'zz-noise', [0, 0.5]); // unrelated noise is not in the witness…
    h.ops.pop();
    h.put(3, 'c', [10, 11], 5);
    h.get(2, 'a', [4, 5]);
    const r = expectInvalid(h, [0, 1, 3]);
    expect(r.witness?.explanation).toMatch(/#3 get: it observed "a" but the key is "b" modIndex=2/);
  });

  it('lost write: the final read misses an acknowledged write that nothing overwrote', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(2, 'b', [2, 3], 2);
    h.put(3, 'c', [4]); // indeterminate
    const ops = appendFinalReads(h.ops, new Map([['x', 'a']]));
    const r = check(ops);
    expect(r.valid, formatResult(r)).toBe(false);
    expect(r.witness?.ops.map((o) => o.id)).toEqual([0, 1, 3]);
  });

  it('split brain: two cas with the same prevIndex both succeed', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.cas(2, 'b', 1, [2, 6], { index: 2 });
    h.cas(3, 'c', 1, [3, 7], { index: 3 });
    h.get(1, 'c', [8, 9]);
    const r = expectInvalid(h, [1, 2]);
    expect(r.witness?.explanation).toMatch(/needs modIndex=1/);
  });

  it('a read of a value never written', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.get(2, 'ghost', [2, 3]);
    h.put(1, 'b', [4, 5], 2);
    const r = expectInvalid(h, [1]);
    expect(r.witness?.explanation).toMatch(/no operation wrote "ghost" to this key/);
  });

  it('a 412 where the modIndex could only have matched', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.cas(2, 'b', 1, [2, 3], { failed: true }); // the server said modIndex ≠ 1
    expectInvalid(h, [0, 1]);
  });

  it('acknowledged log indexes that contradict real time', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 5);
    h.put(2, 'b', [2, 3], 3);
    const r = expectInvalid(h, [0, 1]);
    expect(r.witness?.explanation).toMatch(/log index 3 is not above 5/);
  });

  it('an indeterminate write seen, then undone', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(2, 'b', [2]);
    h.get(3, 'b', [3, 4]);
    h.get(3, 'a', [5, 6]);
    expectInvalid(h, [0, 1, 2, 3]);
  });

  it('a stale read inside a busy history still gets a small witness', () => {
    const { history } = generateHistory({ seed: 42, ops: 400, processes: 6, keys: 1 });
    const last = Math.max(...history.map((o) => o.complete ?? o.invoke));
    const ops: Operation[] = [
      ...history,
      {
        id: 1000,
        process: 9,
        key: 'k0',
        f: 'put',
        value: 'p',
        invoke: last + 1,
        complete: last + 2,
        outcome: 'ok',
        result: { index: 10_000 },
      },
      {
        id: 1001,
        process: 9,
        key: 'k0',
        f: 'put',
        value: 'q',
        invoke: last + 3,
        complete: last + 4,
        outcome: 'ok',
        result: { index: 10_001 },
      },
      {
        id: 1002,
        process: 9,
        key: 'k0',
        f: 'get',
        value: 'p',
        invoke: last + 5,
        complete: last + 6,
        outcome: 'ok',
      },
    ];
    const r = check(ops);
    expect(r.valid, formatResult(r)).toBe(false);
    expect(r.witness?.ops.map((o) => o.id)).toEqual([1000, 1001, 1002]);
  });
});

describe('formatResult', () => {
  it('prints the verdict, the witness one op per line, and the explanation', () => {
    const h = new H();
    h.put(1, 'a', [0, 1], 1);
    h.put(1, 'b', [2, 3], 2);
    h.get(2, 'a', [4, 5]);
    const text = formatResult(check(h.ops));
    expect(text).toContain('linearizable: NO — 1 of 1 keys violate it: "x"');
    expect(text).toContain('witness on key "x": 3 operations (minimal)');
    expect(text).toContain('  #0 p1 put x "a" → ok index=1  [0, 1]');
    expect(text).toContain('  #2 p2 get x → ok "a"  [4, 5]');
    expect(text).toContain('Longest legal order found: #0 → #1, leaving the key "b" modIndex=2.');
    expect(formatResult(check(h.ops.slice(0, 2)))).toMatch(/^linearizable: yes \(2 ops, 1 keys/);
  });
});

describe('budget', () => {
  /**
   * 24 mutually concurrent puts whose order nothing pins down (no index reported), then two
   * reads in an order no interleaving gives: the search must try every subset.
   */
  function pathological(): Operation[] {
    const ops: Operation[] = [];
    for (let i = 0; i < 24; i++)
      ops.push({
        id: i,
        process: i,
        key: 'x',
        f: 'put',
        value: `v${i}`,
        invoke: 0,
        complete: 100,
        outcome: 'ok',
      });
    ops.push({
      id: 24,
      process: 30,
      key: 'x',
      f: 'get',
      value: 'v0',
      invoke: 101,
      complete: 102,
      outcome: 'ok',
    });
    ops.push({
      id: 25,
      process: 30,
      key: 'x',
      f: 'get',
      value: 'v1',
      invoke: 103,
      complete: 104,
      outcome: 'ok',
    });
    return ops;
  }

  it('answers unknown when the time runs out instead of hanging', () => {
    const t = performance.now();
    const r = checkLinearizable(pathological(), { timeLimitMs: 200 });
    expect(performance.now() - t).toBeLessThan(2_000);
    expect(r.valid).toBe('unknown');
    expect(r.perKey[0]).toMatchObject({ key: 'x', valid: 'unknown', budget: 'time' });
    expect(formatResult(r)).toMatch(/undecided keys: "x" \(time budget, 26 ops\)/);
  });

  it('answers unknown when the steps run out', () => {
    const r = checkLinearizable(pathological(), { maxSteps: 100_000 });
    expect(r.perKey[0]).toMatchObject({ valid: 'unknown', budget: 'steps' });
  });

  it('a violation on one key wins over an unknown on another', () => {
    const ops = pathological();
    ops.push({
      id: 99,
      process: 1,
      key: 'y',
      f: 'get',
      value: 'nope',
      invoke: 0,
      complete: 1,
      outcome: 'ok',
    });
    const r = checkLinearizable(ops, { timeLimitMs: 100 });
    expect(r.valid).toBe(false);
    expect(r.witness?.key).toBe('y');
  });
});
