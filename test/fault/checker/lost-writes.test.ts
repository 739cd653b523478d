import { describe, expect, it } from 'vitest';
import type { Operation } from './history.js';
import { checkLinearizable, formatResult } from './linearizable.js';
import { appendFinalReads, checkLostWrites } from './lost-writes.js';

let nextId = 0;
function put(
  value: string,
  invoke: number,
  complete: number | undefined,
  outcome: Operation['outcome'] = 'ok',
): Operation {
  return {
    id: nextId++,
    process: 1,
    key: 'x',
    f: 'put',
    value,
    invoke,
    complete,
    outcome,
    ...(outcome === 'ok' ? { result: { index: nextId } } : {}),
  };
}
function del(invoke: number, complete: number | undefined, outcome: Operation['outcome'] = 'ok'): Operation {
  return {
    id: nextId++,
    process: 2,
    key: 'x',
    f: 'delete',
    invoke,
    complete,
    outcome,
    ...(outcome === 'ok' ? { result: { index: nextId } } : {}),
  };
}
const final = (value: string | null): Map<string, string | null> => new Map([['x', value]]);

describe('checkLostWrites', () => {
  it('accepts a final value from the last write, or from one concurrent with it', () => {
    const h = [put('a', 0, 1), put('b', 2, 10), put('c', 3, 9)];
    expect(checkLostWrites(h, final('b'))).toEqual([]);
    expect(checkLostWrites(h, final('c'))).toEqual([]);
  });

  it('reports an acknowledged write that nothing could have overwritten', () => {
    const h = [put('a', 0, 1), put('b', 2, 3)];
    const problems = checkLostWrites(h, final('a'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ key: 'x', kind: 'lost-write', op: h[1] });
    expect(problems[0]!.message).toMatch(/acknowledged write #\d+ \(put "b"\) on key "x" is lost/);
  });

  it('lets an indeterminate write be the final value, or be lost', () => {
    const h = [put('a', 0, 1), put('b', 2, undefined, 'info')];
    expect(checkLostWrites(h, final('b'))).toEqual([]);
    expect(checkLostWrites(h, final('a'))).toEqual([]);
  });

  it('reports a final value nobody wrote, or that a failed write wrote', () => {
    const h = [put('a', 0, 1), put('b', 2, 3, 'fail')];
    expect(checkLostWrites(h, final('zzz'))[0]).toMatchObject({ kind: 'never-written' });
    expect(checkLostWrites(h, final('b'))[0]).toMatchObject({ kind: 'failed-write-visible', op: h[1] });
  });

  it('needs a delete after every acknowledged write when the key ends absent', () => {
    expect(checkLostWrites([put('a', 0, 1), del(2, 3)], final(null))).toEqual([]);
    expect(checkLostWrites([put('a', 0, 1), del(2, undefined, 'info')], final(null))).toEqual([]);
    const lost = checkLostWrites([put('a', 0, 1), del(2, 3), put('b', 4, 5)], final(null));
    expect(lost).toHaveLength(1);
    expect(lost[0]!.message).toMatch(/put "b".* is lost: the key ends absent/);
    expect(checkLostWrites([put('a', 0, 1)], final(null))[0]!.message).toMatch(
      /no delete of it may have applied/,
    );
  });

  it('checks only the keys read back', () => {
    expect(checkLostWrites([put('a', 0, 1)], new Map())).toEqual([]);
  });
});

describe('appendFinalReads', () => {
  it('adds one get per key after everything, for the full model to check', () => {
    const h = [put('a', 0, 1), put('b', 2, 3), put('c', 4, undefined, 'info')];
    const withFinal = appendFinalReads(h, new Map([['x', { value: 'b', modIndex: h[1]!.result!.index! }]]));
    expect(withFinal.at(-1)).toMatchObject({
      f: 'get',
      key: 'x',
      value: 'b',
      invoke: 5,
      complete: 6,
      process: 'final',
    });
    expect(checkLinearizable(withFinal).valid).toBe(true);
    expect(checkLinearizable(appendFinalReads(h, final('c'))).valid).toBe(true);
    const lost = checkLinearizable(appendFinalReads(h, final('a')));
    expect(lost.valid, formatResult(lost)).toBe(false);
  });

  it('catches what the cheap check cannot: the log order of the writes', () => {
    // By real time, a (concurrent with both others) could be last; by log index it is first.
    const h = [put('a', 0, 10), put('b', 1, 2), put('c', 3, 4)];
    expect(checkLostWrites(h, final('a'))).toEqual([]);
    const r = checkLinearizable(appendFinalReads(h, final('a')));
    expect(r.valid).toBe(false);
    expect(r.witness?.explanation).toMatch(/it observed "a" but the key is "c"/);
  });
});
