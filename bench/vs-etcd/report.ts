/** Medians over rounds, the printed tables and the parseable summary line. */
import type { Kind, LevelResult } from './load.js';
import type { ServerProcess, System } from './targets.js';

/** One system's cluster in one round: every level, and its servers' totals. */
export interface SystemRun {
  readonly system: System;
  readonly round: number;
  readonly version: string;
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly warmupSeconds: number;
  readonly connShapes: Record<string, string>;
  readonly levels: LevelResult[];
  readonly servers: readonly (ServerProcess & {
    /** VmHWM at the end of the run. */
    peakRssMiB: number;
    /** CPU seconds over the measured levels. */
    measuredCpuSeconds: number;
    /** CPU seconds of the process's whole life up to the stop (start-up and warm-up included). */
    totalCpuSeconds: number;
  })[];
}

export interface LevelSummary {
  readonly kind: Kind;
  readonly clients: number;
  readonly opsPerSec: number;
  /** (max - min) / median of the rounds' ops/s. */
  readonly spread: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuUsPerOp: number;
  readonly clientCpuUsPerOp: number;
  /** Cores used by other processes on the machine meanwhile (the noise). */
  readonly otherCores: number;
  /** Median CPU probe before the level (ms; higher = the machine was slower). */
  readonly probeMs: number;
  readonly errors: number;
  readonly rounds: number[];
}

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const levelKey = (kind: Kind, clients: number): string => `${kind}@${clients}`;

/** Medians per system and level, over the rounds. */
export function summarize(runs: readonly SystemRun[]): Map<System, Map<string, LevelSummary>> {
  const out = new Map<System, Map<string, LevelSummary>>();
  for (const system of new Set(runs.map((r) => r.system))) {
    const mine = runs.filter((r) => r.system === system);
    const byLevel = new Map<string, LevelResult[]>();
    for (const r of mine) {
      for (const l of r.levels) {
        const k = levelKey(l.kind, l.clients);
        byLevel.set(k, [...(byLevel.get(k) ?? []), l]);
      }
    }
    const levels = new Map<string, LevelSummary>();
    for (const [k, ls] of byLevel) {
      const ops = ls.map((l) => l.opsPerSec);
      const med = median(ops);
      levels.set(k, {
        kind: ls[0]!.kind,
        clients: ls[0]!.clients,
        opsPerSec: med,
        spread: (Math.max(...ops) - Math.min(...ops)) / med,
        p50Ms: median(ls.map((l) => l.p50Ms)),
        p99Ms: median(ls.map((l) => l.p99Ms)),
        serverCpuUsPerOp: median(ls.map((l) => l.serverCpuUsPerOp)),
        clientCpuUsPerOp: median(ls.map((l) => l.clientCpuUsPerOp)),
        otherCores: median(ls.map((l) => l.otherCores)),
        probeMs: median(ls.map((l) => l.probeMs)),
        errors: ls.reduce((a, l) => a + l.errors, 0),
        rounds: ops,
      });
    }
    out.set(system, levels);
  }
  return out;
}

export interface ServerSummary {
  readonly label: string;
  readonly peakRssMiB: number;
  readonly measuredCpuSeconds: number;
  readonly totalCpuSeconds: number;
}

/** Per server position (leader, follower 1, follower 2): medians over the rounds. */
export function summarizeServers(runs: readonly SystemRun[], system: System): ServerSummary[] {
  const mine = runs.filter((r) => r.system === system);
  const ordered = mine.map((r) => [
    ...r.servers.filter((s) => s.role === 'leader'),
    ...r.servers.filter((s) => s.role !== 'leader'),
  ]);
  const width = Math.max(0, ...ordered.map((o) => o.length));
  const out: ServerSummary[] = [];
  for (let i = 0; i < width; i++) {
    const at = ordered.map((o) => o[i]).filter((s) => s !== undefined);
    out.push({
      label: i === 0 ? 'leader' : `follower ${i}`,
      peakRssMiB: median(at.map((s) => s.peakRssMiB)),
      measuredCpuSeconds: median(at.map((s) => s.measuredCpuSeconds)),
      totalCpuSeconds: median(at.map((s) => s.totalCpuSeconds)),
    });
  }
  return out;
}

const num = (x: number, digits = 0): string =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a';
const ratioOf = (a: number | undefined, b: number | undefined): number =>
  a === undefined || b === undefined || !(b > 0) ? NaN : a / b;
const pad = (s: string, w: number): string => s.padStart(w);

/** The comparison table: one row per system and level, then the ratio tsraft/etcd. */
export function table(sum: Map<System, Map<string, LevelSummary>>, order: readonly string[]): string {
  const cols = [
    'ops/s',
    'spread',
    'p50 ms',
    'p99 ms',
    'server µs/op',
    'client µs/op',
    'others',
    'probe',
    'errors',
  ];
  const widths = [9, 7, 8, 8, 13, 13, 7, 7, 7];
  const lines = [
    `${'phase'.padEnd(10)} ${'system'.padEnd(7)}${cols.map((c, i) => pad(c, widths[i]!)).join('')}`,
  ];
  for (const k of order) {
    const e = sum.get('etcd')?.get(k);
    const t = sum.get('tsraft')?.get(k);
    let firstRow = true;
    for (const [name, s] of [
      ['etcd', e],
      ['tsraft', t],
    ] as const) {
      if (!s) continue;
      const cells = [
        num(s.opsPerSec),
        `${num(s.spread * 100)}%`,
        num(s.p50Ms, 2),
        num(s.p99Ms, 2),
        num(s.serverCpuUsPerOp),
        num(s.clientCpuUsPerOp),
        num(s.otherCores, 2),
        num(s.probeMs, 1),
        String(s.errors),
      ];
      lines.push(
        `${(firstRow ? k : '').padEnd(10)} ${name.padEnd(7)}${cells.map((c, i) => pad(c, widths[i]!)).join('')}`,
      );
      firstRow = false;
    }
    if (e && t) {
      const cells = [
        num(ratioOf(t.opsPerSec, e.opsPerSec), 2),
        '',
        num(ratioOf(t.p50Ms, e.p50Ms), 2),
        num(ratioOf(t.p99Ms, e.p99Ms), 2),
        num(ratioOf(t.serverCpuUsPerOp, e.serverCpuUsPerOp), 2),
        num(ratioOf(t.clientCpuUsPerOp, e.clientCpuUsPerOp), 2),
        '',
        '',
        '',
      ];
      lines.push(`${''.padEnd(10)} ${'ratio'.padEnd(7)}${cells.map((c, i) => pad(c, widths[i]!)).join('')}`);
    }
  }
  return lines.join('\n');
}

export function serverTable(runs: readonly SystemRun[], systems: readonly System[]): string {
  const lines = [
    `${'server'.padEnd(18)}${pad('peak RSS MiB', 13)}${pad('CPU s measured', 16)}${pad('CPU s total', 13)}`,
  ];
  for (const system of systems) {
    for (const s of summarizeServers(runs, system)) {
      lines.push(
        `${`${system} ${s.label}`.padEnd(18)}${pad(num(s.peakRssMiB, 1), 13)}${pad(num(s.measuredCpuSeconds, 1), 16)}${pad(num(s.totalCpuSeconds, 1), 13)}`,
      );
    }
  }
  return lines.join('\n');
}

/** The ratios of the summary line (tsraft/etcd; NaN when a level was not run). */
export function headlineRatios(
  sum: Map<System, Map<string, LevelSummary>>,
  readClients: number,
): { writes64: number; writes256: number; p99at64: number; reads: number } {
  const e = sum.get('etcd');
  const t = sum.get('tsraft');
  const w64 = levelKey('write', 64);
  const w256 = levelKey('write', 256);
  const r = levelKey('read', readClients);
  return {
    writes64: ratioOf(t?.get(w64)?.opsPerSec, e?.get(w64)?.opsPerSec),
    writes256: ratioOf(t?.get(w256)?.opsPerSec, e?.get(w256)?.opsPerSec),
    p99at64: ratioOf(t?.get(w64)?.p99Ms, e?.get(w64)?.p99Ms),
    reads: ratioOf(t?.get(r)?.opsPerSec, e?.get(r)?.opsPerSec),
  };
}

export function summaryLine(r: ReturnType<typeof headlineRatios>, readClients: number): string {
  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
  return `vs-etcd: writes@64 ratio=${f(r.writes64)}, writes@256 ratio=${f(r.writes256)}, p99@64 ratio=${f(r.p99at64)}, reads@${readClients || 64} ratio=${f(r.reads)}`;
}

/**
 * ops/s ratio tsraft/etcd within each round (the two systems ran back to back, so a machine
 * that drifts between rounds affects both sides of a pair alike), per level, and the median.
 */
export function pairedRatios(
  runs: readonly SystemRun[],
  order: readonly string[],
): { level: string; perRound: number[]; median: number }[] {
  const rounds = [...new Set(runs.map((r) => r.round))].sort((a, b) => a - b);
  return order.map((level) => {
    const perRound = rounds.map((round) => {
      const ops = (system: System): number | undefined =>
        runs
          .find((r) => r.system === system && r.round === round)
          ?.levels.find((l) => levelKey(l.kind, l.clients) === level)?.opsPerSec;
      return ratioOf(ops('tsraft'), ops('etcd'));
    });
    return { level, perRound, median: median(perRound) };
  });
}

export function pairedTable(rows: ReturnType<typeof pairedRatios>): string {
  return rows
    .map(
      (r) =>
        `${r.level.padEnd(10)} ${r.perRound.map((x) => num(x, 2).padStart(6)).join('')}   median ${num(r.median, 2)}`,
    )
    .join('\n');
}
