import { describe, expect, it } from 'vitest';
import { resolveConfig, type RaftConfig } from '../../../src/core/config.js';
import { SeededRand, hashString } from '../../../src/core/rand.js';
import type { LogStorage } from '../../../src/core/log-storage.js';
import { ConfigError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';

const storage = new MemoryStorage();

function errorOf(c: Partial<RaftConfig>): ConfigError | undefined {
  try {
    resolveConfig({ id: 'n1', storage, ...c } as RaftConfig);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  return undefined;
}

describe('resolveConfig', () => {
  it('fills in the documented defaults', () => {
    const c = resolveConfig({ id: 'n1', storage });
    expect(c).toMatchObject({
      id: 'n1',
      electionTicks: 10,
      heartbeatTicks: 1,
      applied: 0,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      maxInflightBytes: 0,
      maxUncommittedBytes: 64 * 1024 * 1024,
      maxCommittedBytesPerReady: 64 * 1024 * 1024,
      preVote: true,
      checkQuorum: true,
      leaseMarginTicks: 2,
      forwardProposals: false,
    });
    expect(resolveConfig({ id: 'n1', storage, electionTicks: 16 }).leaseMarginTicks).toBe(4); // ceil(16 / 5)
  });

  it('seeds the default randomness from the id, so a node replays the same timeouts', () => {
    const a = resolveConfig({ id: 'n1', storage }).rand;
    const b = resolveConfig({ id: 'n1', storage }).rand;
    const other = new SeededRand(hashString('n2'));
    const xs = [a.intn(1000), a.intn(1000), a.intn(1000)];
    expect([b.intn(1000), b.intn(1000), b.intn(1000)]).toEqual(xs);
    expect([other.intn(1000), other.intn(1000), other.intn(1000)]).not.toEqual(xs);
  });

  it('keeps given values', () => {
    const rand = new SeededRand(1);
    const c = resolveConfig({
      id: 'x',
      storage,
      electionTicks: 20,
      heartbeatTicks: 3,
      applied: 7,
      leaseMarginTicks: 0,
      preVote: false,
      checkQuorum: false,
      forwardProposals: true,
      maxUncommittedBytes: 0,
      rand,
    });
    expect(c).toMatchObject({ electionTicks: 20, heartbeatTicks: 3, applied: 7, leaseMarginTicks: 0 });
    expect(c.rand).toBe(rand);
  });

  const rules: [string, Partial<RaftConfig>, RegExp][] = [
    ['an empty id', { id: '' }, /id must be a non-empty string/],
    ['a non-string id', { id: 7 as unknown as string }, /id must be a non-empty string/],
    ['no storage', { storage: undefined as unknown as LogStorage }, /storage is required/],
    ['electionTicks 0', { electionTicks: 0 }, /electionTicks must be a positive integer/],
    ['fractional electionTicks', { electionTicks: 2.5 }, /electionTicks must be a positive integer/],
    ['heartbeatTicks -1', { heartbeatTicks: -1 }, /heartbeatTicks must be a positive integer/],
    [
      'electionTicks = heartbeatTicks',
      { electionTicks: 3, heartbeatTicks: 3 },
      /electionTicks must be greater than heartbeatTicks/,
    ],
    [
      'electionTicks < heartbeatTicks',
      { electionTicks: 2, heartbeatTicks: 5 },
      /electionTicks must be greater than heartbeatTicks/,
    ],
    ['leaseMarginTicks -1', { leaseMarginTicks: -1 }, /leaseMarginTicks must be a non-negative integer/],
    [
      'leaseMarginTicks = electionTicks',
      { leaseMarginTicks: 10 },
      /leaseMarginTicks must be below electionTicks/,
    ],
    ['applied -1', { applied: -1 }, /applied must be a non-negative integer/],
    ['maxSizePerMsg 0', { maxSizePerMsg: 0 }, /maxSizePerMsg must be a positive integer/],
    ['maxInflightMsgs 0', { maxInflightMsgs: 0 }, /maxInflightMsgs must be a positive integer/],
    [
      'maxInflightBytes NaN',
      { maxInflightBytes: Number.NaN },
      /maxInflightBytes must be a non-negative integer/,
    ],
    [
      'maxUncommittedBytes -5',
      { maxUncommittedBytes: -5 },
      /maxUncommittedBytes must be a non-negative integer/,
    ],
    [
      'maxCommittedBytesPerReady 0',
      { maxCommittedBytesPerReady: 0 },
      /maxCommittedBytesPerReady must be a positive integer/,
    ],
  ];
  for (const [name, c, rule] of rules) {
    it(`refuses ${name}, naming the rule`, () => {
      const err = errorOf(c);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err?.code).toBe('CONFIG_INVALID');
      expect(err?.message).toMatch(rule);
    });
  }
});

describe('SeededRand', () => {
  it('is deterministic per seed and stays in range', () => {
    const a = new SeededRand(42);
    const b = new SeededRand(42);
    for (let i = 0; i < 1000; i++) {
      const x = a.intn(7);
      expect(b.intn(7)).toBe(x);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(7);
      const f = a.float();
      b.float();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
    }
    expect(a.intn(0)).toBe(0);
    expect(a.intn(-3)).toBe(0);
  });

  it('spreads values over the whole range', () => {
    const r = new SeededRand(1);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(r.intn(10));
    expect(seen.size).toBe(10);
  });

  it('hashString is stable (FNV-1a) and tells ids apart', () => {
    expect(hashString('')).toBe(0x811c9dc5);
    expect(hashString('n1')).toBe(hashString('n1'));
    expect(hashString('n1')).not.toBe(hashString('n2'));
  });
});
