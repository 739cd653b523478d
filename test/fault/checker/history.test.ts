import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appendHistory,
  formatOp,
  parseHistory,
  readHistory,
  stringifyHistory,
  validateHistory,
  writeHistory,
  type Operation,
} from './history.js';

const dir = mkdtempSync(join(tmpdir(), 'tsraft-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ops: Operation[] = [
  {
    id: 0,
    process: 1,
    key: 'a',
    f: 'put',
    value: 'v1',
    invoke: 10,
    complete: 20,
    outcome: 'ok',
    result: { index: 7 },
  },
  { id: 1, process: 2, key: 'a', f: 'get', value: null, invoke: 11, complete: 12, outcome: 'ok' },
  {
    id: 2,
    process: 'c3',
    key: 'a',
    f: 'cas',
    value: 'v2',
    prevIndex: 7,
    invoke: 30,
    complete: 45,
    outcome: 'fail',
    error: 'precondition',
    result: { modIndex: 9 },
  },
  { id: 3, process: 1, key: 'b', f: 'delete', invoke: 40, complete: undefined, outcome: 'info' },
];

describe('history files (JSON lines)', () => {
  it('round-trip through a file, an indeterminate completion included', () => {
    const path = join(dir, 'h.jsonl');
    writeHistory(path, ops.slice(0, 2));
    appendHistory(path, ops.slice(2));
    expect(readHistory(path)).toEqual(ops);
  });

  it('leave out an infinite or missing completion', () => {
    const text = stringifyHistory([{ ...ops[3]!, complete: Infinity }]);
    expect(text).not.toContain('complete');
    expect(parseHistory(text)[0]!.complete).toBeUndefined();
  });

  it('name the line of a malformed record', () => {
    expect(() => parseHistory(`${stringifyHistory(ops)}\n{"id": 9,`)).toThrow(/line 6/);
    expect(() => parseHistory('[1, 2]')).toThrow(/line 1: not a JSON object/);
  });
});

describe('validateHistory', () => {
  it('accepts well-formed records', () => {
    expect(validateHistory(ops)).toEqual([]);
  });

  it('reports each malformed record by id', () => {
    const bad: Operation[] = [
      { ...ops[0]!, complete: 5 }, // before invoke
      { ...ops[1]!, id: 0 }, // duplicate id
      { id: 2, process: 1, key: 'a', f: 'cas', value: 'x', invoke: 1, complete: 2, outcome: 'ok' }, // no prevIndex
      { id: 3, process: 1, key: 'a', f: 'get', invoke: 1, complete: 2, outcome: 'ok' }, // no value seen
      { id: 4, process: 1, key: 'a', f: 'put', value: 'y', invoke: 1, complete: undefined, outcome: 'ok' },
    ];
    const problems = validateHistory(bad);
    expect(problems.map((p) => p.id)).toEqual([0, 0, 2, 3, 4]);
    expect(problems.map((p) => p.message).join('\n')).toMatch(/complete is before invoke/);
  });
});

describe('formatOp', () => {
  it('shows process, call, answer and interval on one line', () => {
    expect(formatOp(ops[0]!)).toBe('#0 p1 put a "v1" → ok index=7  [10, 20]');
    expect(formatOp(ops[1]!)).toBe('#1 p2 get a → ok absent  [11, 12]');
    expect(formatOp(ops[2]!)).toBe('#2 c3 cas a "v2" prevIndex=7 → fail precondition modIndex=9  [30, 45]');
    expect(formatOp({ ...ops[3]!, complete: 55 })).toBe('#3 p1 delete b → info  [40, ∞) gave up at 55');
  });
});
