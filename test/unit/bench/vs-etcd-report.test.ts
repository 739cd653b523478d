import { describe, expect, it } from 'vitest';
import type { LevelResult } from '../../../bench/vs-etcd/load.js';
import { headlineRatios, pairedRatios, summarize, type SystemRun } from '../../../bench/vs-etcd/report.js';

function level(kind: 'write' | 'read', clients: number, opsPerSec: number, p99Ms = 10): LevelResult {
  return {
    kind,
    clients,
    seconds: 1,
    ops: opsPerSec,
    opsPerSec,
    p50Ms: 1,
    p99Ms,
    maxMs: p99Ms,
    errors: 0,
    firstError: null,
    serverCpuSeconds: [0.1, 0.1, 0.1],
    serverCpuUsPerOp: 100,
    clientCpuUsPerOp: 50,
    otherCores: 0,
    probeMs: 5,
  };
}

function run(system: 'etcd' | 'tsraft', round: number, w64: number, p99: number, r64: number): SystemRun {
  return {
    system,
    round,
    version: 'x',
    loadBefore: 0,
    loadAfter: 0,
    warmupSeconds: 1,
    connShapes: {},
    levels: [level('write', 64, w64, p99), level('read', 64, r64)],
    servers: [],
  };
}

describe('bench:vs-etcd report', () => {
  // A machine that runs at half speed in round 2 slows both systems of that round alike.
  const runs = [
    run('etcd', 1, 1000, 20, 2000),
    run('tsraft', 1, 1600, 15, 3000),
    run('etcd', 2, 500, 40, 1000),
    run('tsraft', 2, 800, 30, 1500),
    run('etcd', 3, 1000, 20, 2000),
    run('tsraft', 3, 1500, 16, 3200),
  ];

  it('takes medians per system, then ratios', () => {
    const r = headlineRatios(summarize(runs), 64);
    expect(r.writes64).toBeCloseTo(1500 / 1000);
    expect(r.p99at64).toBeCloseTo(16 / 20);
    expect(r.reads).toBeCloseTo(3000 / 2000);
    expect(Number.isNaN(r.writes256)).toBe(true);
  });

  it('pairs the two systems of each round', () => {
    const [w, rd] = pairedRatios(runs, ['write@64', 'read@64']);
    expect(w!.perRound.map((x) => x.toFixed(2))).toEqual(['1.60', '1.60', '1.50']);
    expect(w!.median).toBeCloseTo(1.6);
    expect(rd!.perRound.map((x) => x.toFixed(2))).toEqual(['1.50', '1.50', '1.60']);
  });

  it('leaves a round without a partner out of the median', () => {
    const [w] = pairedRatios([...runs, run('etcd', 4, 100, 1, 1)], ['write@64']);
    expect(w!.perRound).toHaveLength(4);
    expect(Number.isNaN(w!.perRound[3]!)).toBe(true);
    expect(w!.median).toBeCloseTo(1.6);
  });
});
