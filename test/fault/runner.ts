import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KvClient } from '../../src/client/index.js';
import { checkHistory, type CheckOutcome } from './check.js';
import type { CheckOptions } from './checker/linearizable.js';
import { FaultCluster, sleep, type FaultMember } from './fault-cluster.js';
import type { NetworkProxy } from './proxy.js';
import { HistoryRecorder, type RecordedOp } from './history-recorder.js';
import {
  FAULT_NEMESES,
  inject,
  membershipLoop,
  reconcileMembership,
  type Fault,
  type MembershipEvent,
  type NemesisContext,
  type NemesisName,
} from './nemesis.js';
import { Rng, formatSeed } from './rng.js';
import { Workload, type WorkloadOptions } from './workload.js';

/**
 * One fault-injection run against real processes: start a cluster, run the workload while
 * the nemeses inject faults (one fault window at a time; membership changes in the
 * background), heal everything, wait for recovery, read every key back, compare the
 * replicas, check the history, and report.
 */

export interface RunOptions {
  seed: number;
  nodes: number;
  /** Seconds of workload under faults (before the final heal). */
  timeS: number;
  nemeses: NemesisName[];
  clients: number;
  /** Deliberate bugs switched on in every server (TSRAFT_UNSAFE_TEST_BUGS). */
  bugs?: string[];
  /** Keys in use at any time. Default 8. */
  keys?: number;
  opsPerKey?: number;
  /** Time between faults, ms. Default [1000, 3000]. */
  quietMs?: [number, number];
  /** How long each fault lasts, ms. Default [2500, 6000]. */
  holdMs?: [number, number];
  membershipPeriodMs?: [number, number];
  /** Pin nemesis modes (e.g. `{ kill: ['all'] }`). */
  modes?: NemesisContext['modes'];
  /** After the final heal, the cluster must serve again within this. Default 30 s. */
  recoveryTimeoutMs?: number;
  /** Workload time after recovery. Default 2000 ms. */
  settleMs?: number;
  /** How long to wait for the replicas to reach one applied index before comparing them. Default 10 s. */
  replicaWaitMs?: number;
  /** Where kept runs go. Default $TSRAFT_FAULT_OUT or <tmpdir>/tsraft-fault-runs. */
  out?: string;
  /** Keep the run's directory (history, logs, summary): always, only when it did not pass (default), never. */
  keep?: 'always' | 'failed' | 'never';
  diskMode?: 'auto' | 'tmpfs' | 'inject';
  workload?: Partial<
    Pick<
      WorkloadOptions,
      | 'leaseFraction'
      | 'kvFraction'
      | 'ops'
      | 'mix'
      | 'uniqueFraction'
      | 'thinkMs'
      | 'timeoutMs'
      | 'deadlineMs'
    >
  >;
  check?: CheckOptions;
  /**
   * Checked after each fault window with the history so far (operations in flight as
   * indeterminate): true ends the fault phase early (the teeth tests stop as soon as the
   * history shows what they look for, then heal, read back and check as usual).
   */
  stopWhen?: (history: readonly RecordedOp[]) => boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Extra `tsraft serve` flags. */
  serverArgs?: string[];
}

export interface FaultWindow {
  n: number;
  nemesis: NemesisName;
  description: string;
  targets: string[];
  start: number;
  heal: number;
  healed: number;
  notes: string[];
}

export type Verdict = 'pass' | 'violation' | 'error' | 'unknown';

export interface RunResult {
  seed: number;
  verdict: Verdict;
  /** Why the verdict is not pass. */
  reasons: string[];
  summary: string;
  history: RecordedOp[];
  windows: FaultWindow[];
  membership: MembershipEvent[];
  check: CheckOutcome | undefined;
  /** The kept run directory. */
  dir: string | undefined;
  stats: {
    ops: number;
    ok: number;
    fail: number;
    info: number;
    faults: number;
    ms: number;
    recoveryMs?: number;
    /** Elections: the highest term any member reported in its leader-changed log lines. */
    maxTerm: number;
    proxy: NetworkProxy['stats'];
  };
}

const pct = (a: number, b: number): string => (b === 0 ? '  -' : `${Math.round((100 * a) / b)}%`.padStart(4));

export function commandLine(o: RunOptions): string {
  const parts = [
    'npm run test:fault --',
    `--seed ${formatSeed(o.seed)}`,
    `--nodes ${o.nodes}`,
    `--time ${o.timeS}`,
    `--nemesis ${o.nemeses.join(',')}`,
    `--clients ${o.clients}`,
  ];
  if (o.bugs?.length) parts.push(`--bugs ${o.bugs.join(',')}`);
  if (o.modes) {
    for (const [n, ms] of Object.entries(o.modes)) if (ms?.length) parts.push(`--mode ${n}=${ms.join('/')}`);
  }
  if (o.keys !== undefined) parts.push(`--keys ${o.keys}`);
  if (o.holdMs) parts.push(`--hold ${o.holdMs.join('-')}`);
  if (o.quietMs) parts.push(`--quiet ${o.quietMs.join('-')}`);
  const w = o.workload ?? {};
  if (w.timeoutMs !== undefined) parts.push(`--client-timeout ${w.timeoutMs}`);
  if (w.kvFraction !== undefined) parts.push(`--kv-fraction ${w.kvFraction}`);
  if (w.uniqueFraction !== undefined) parts.push(`--unique ${w.uniqueFraction}`);
  if (o.diskMode) parts.push(`--disk ${o.diskMode}`);
  return parts.join(' ');
}

export async function runFault(o: RunOptions): Promise<RunResult> {
  const log = o.log ?? ((): void => undefined);
  const started = performance.now();
  const rng = new Rng(o.seed);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsraft-fault-run-'));
  const rec = new HistoryRecorder(path.join(workDir, 'history.jsonl'));
  const cluster = new FaultCluster({
    nodes: o.nodes,
    rng: rng.fork(1),
    env: o.bugs?.length ? { TSRAFT_UNSAFE_TEST_BUGS: o.bugs.join(',') } : {},
    diskMembers: o.nemeses.includes('disk') ? 1 : 0,
    ...(o.diskMode ? { diskMode: o.diskMode } : {}),
    ...(o.serverArgs ? { args: o.serverArgs } : {}),
  });
  const findings: string[] = [];
  const windows: FaultWindow[] = [];
  const membership: MembershipEvent[] = [];
  const events: string[] = [];
  const note = (msg: string): void => {
    const line = `${(rec.now() / 1000).toFixed(1).padStart(6)}s ${msg}`;
    events.push(line);
    log(line);
  };
  cluster.onUnexpectedExit = (m: FaultMember, e) => {
    if (m.diskFull) {
      note(`${m.name} stopped on its full disk (exit ${e.code ?? e.signal})`);
      return;
    }
    const why = `${m.name} exited unexpectedly (code ${e.code}, signal ${e.signal}) at ${(e.at / 1000).toFixed(1)}s`;
    findings.push(`${why}\n    ${m.log.slice(-8).join('\n    ')}`);
    note(why);
  };
  const ctx: NemesisContext = {
    cluster,
    electionMs: electionMs(o.serverArgs ?? []),
    rng: rng.fork(2),
    now: () => rec.now(),
    log: note,
    ...(o.modes ? { modes: o.modes } : {}),
  };
  const workload = new Workload({
    clients: o.clients,
    rng: rng.fork(3),
    recorder: rec,
    endpoints: () => cluster.active().map((m) => ({ name: m.name, url: m.clientUrl })),
    ...(o.keys !== undefined ? { keys: o.keys } : {}),
    ...(o.opsPerKey !== undefined ? { opsPerKey: o.opsPerKey } : {}),
    ...o.workload,
  });
  let recoveryMs: number | undefined;
  let finalNotes: string[] = [];
  let workloadStarted = false;
  let stoppedEarly = false;
  try {
    await cluster.init();
    for (const m of cluster.members) cluster.start(m.name);
    const first = await cluster.waitForLeader(20_000);
    note(
      `cluster of ${o.nodes} up, leader ${first.member.name}${o.bugs?.length ? `, BUGS ON: ${o.bugs.join(',')}` : ''}`,
    );
    await waitForPublishedUrls(cluster);
    workload.start();
    workloadStarted = true;
    const end = rec.now() + o.timeS * 1000;
    let membershipDone: Promise<void> = Promise.resolve();
    let stopMembership = false;
    if (o.nemeses.includes('membership')) {
      membershipDone = membershipLoop(
        ctx,
        () => stopMembership || rec.now() > end - 1000,
        membership,
        o.membershipPeriodMs,
      ).catch((e: Error) => {
        findings.push(`membership nemesis failed: ${e.stack ?? e.message}`);
      });
    }
    const faults = o.nemeses.filter((n): n is (typeof FAULT_NEMESES)[number] =>
      (FAULT_NEMESES as readonly string[]).includes(n),
    );
    const [qLo, qHi] = o.quietMs ?? [1000, 3000];
    const [hLo, hHi] = o.holdMs ?? [2500, 6000];
    while (faults.length > 0) {
      await sleep(ctx.rng.int(qLo, qHi));
      if (rec.now() + hLo > end) break;
      const name = ctx.rng.pick(faults);
      const start = rec.now();
      let fault: Fault | undefined;
      try {
        fault = await inject(name, ctx);
      } catch (e) {
        findings.push(`nemesis ${name} failed to inject: ${(e as Error).stack ?? String(e)}`);
        break;
      }
      if (!fault) {
        note(`${name}: nothing to do now`);
        continue;
      }
      note(`fault #${windows.length + 1}: ${fault.description}`);
      const hold = Math.min(ctx.rng.int(hLo, hHi), Math.max(0, end - rec.now()));
      await sleep(hold);
      const heal = rec.now();
      try {
        await fault.heal();
      } catch (e) {
        findings.push(`healing ${fault.description} failed: ${(e as Error).stack ?? String(e)}`);
      }
      const healed = rec.now();
      findings.push(...(fault.findings ?? []));
      windows.push({
        n: windows.length + 1,
        nemesis: fault.nemesis,
        description: fault.description,
        targets: fault.targets,
        start,
        heal,
        healed,
        notes: fault.notes ?? [],
      });
      note(`healed #${windows.length}${fault.notes?.length ? ` (${fault.notes.join('; ')})` : ''}`);
      if (o.stopWhen?.(rec.snapshot())) {
        stoppedEarly = true;
        note('stopping the faults early: the history already shows what this run looks for');
        break;
      }
    }
    const rest = end - rec.now();
    if (rest > 0 && !stoppedEarly) await sleep(rest);
    stopMembership = true;
    await membershipDone;

    // Heal everything, then the cluster must serve again.
    const healAll = rec.now();
    cluster.proxy.heal();
    for (const m of cluster.members) {
      if (m.state === 'paused') cluster.resume(m.name);
      if (m.diskFull) cluster.freeDisk(m.name);
      if (m.state === 'down') cluster.start(m.name);
    }
    await reconcileMembership(ctx);
    note('healed everything; waiting for recovery');
    const recovery = await waitForRecovery(cluster, rec, healAll, o.recoveryTimeoutMs ?? 30_000);
    if (recovery.ms === undefined) {
      findings.push(
        `liveness: the cluster did not recover within ${(o.recoveryTimeoutMs ?? 30_000) / 1000} s of the final heal (${recovery.why})`,
      );
      note(`NOT recovered: ${recovery.why}`);
    } else {
      recoveryMs = recovery.ms;
      note(`recovered ${recovery.ms} ms after the final heal`);
    }
    await sleep(o.settleMs ?? 2000);
    await workload.stop();
    workloadStarted = false;
    // Read back even when the cluster did not fully recover: a leader may still answer, and
    // the reads may show what went wrong.
    note(`reading back ${workload.touchedKeys().length} keys`);
    const budget = recovery.ms === undefined ? 10_000 : 30_000;
    const unread = await finalReads(cluster, rec, workload.touchedKeys(), budget);
    if (unread.length > 0)
      findings.push(`final read-back failed for ${unread.length} keys: ${unread.slice(0, 5).join(', ')}`);
    if (recovery.ms !== undefined)
      finalNotes = await compareReplicas(cluster, findings, o.replicaWaitMs ?? 10_000);
  } catch (e) {
    findings.push(`run failed: ${(e as Error).stack ?? String(e)}`);
  } finally {
    if (workloadStarted) await workload.stop().catch(() => undefined);
    rec.close();
    if (cluster.proxy.stats.unidentified > 0)
      findings.push(
        `the proxy could not tell the sender of ${cluster.proxy.stats.unidentified} peer connections`,
      );
    cluster.saveLogs(path.join(workDir, 'logs'));
    await cluster.destroy().catch(() => undefined);
  }

  const history = rec.ops;
  note(`checking ${history.length} operations`);
  let check: CheckOutcome | undefined;
  try {
    check = checkHistory(history, o.check);
  } catch (e) {
    findings.push(`the checker failed: ${(e as Error).stack ?? String(e)}`);
  }
  if (check && check.malformed.length > 0)
    findings.push(`the recorded history is malformed (a suite bug): ${check.malformed.length} problem(s)`);
  const reasons: string[] = [];
  if (check?.valid === false) reasons.push('safety violation (see the checks)');
  reasons.push(...findings);
  const verdict: Verdict =
    check?.valid === false
      ? 'violation'
      : findings.length > 0 || !check
        ? 'error'
        : check.valid === 'unknown'
          ? 'unknown'
          : 'pass';
  const stats = {
    ops: history.length,
    ok: history.filter((h) => h.outcome === 'ok').length,
    fail: history.filter((h) => h.outcome === 'fail').length,
    info: history.filter((h) => h.outcome === 'info').length,
    faults: windows.length + membership.length,
    ms: Math.round(performance.now() - started),
    ...(recoveryMs !== undefined ? { recoveryMs } : {}),
    maxTerm: Math.max(
      0,
      ...cluster.members.flatMap((m) =>
        m.log.map((l) => Number(/"event":"leader-changed".*"term":(\d+)/.exec(l)?.[1] ?? 0)),
      ),
    ),
    proxy: { ...cluster.proxy.stats },
  };
  const keep = o.keep ?? 'failed';
  let dir: string | undefined;
  if (keep === 'always' || (keep === 'failed' && verdict !== 'pass')) {
    const outRoot = o.out ?? process.env['TSRAFT_FAULT_OUT'] ?? path.join(os.tmpdir(), 'tsraft-fault-runs');
    fs.mkdirSync(outRoot, { recursive: true });
    dir = path.join(outRoot, `${new Date().toISOString().replace(/[:.]/g, '-')}-${formatSeed(o.seed)}`);
    fs.cpSync(workDir, dir, { recursive: true });
  }
  const summary = formatSummary({
    o,
    verdict,
    reasons,
    history,
    windows,
    membership,
    check,
    stats,
    events,
    finalNotes,
    dir,
  });
  if (dir) {
    fs.writeFileSync(path.join(dir, 'summary.txt'), summary + '\n');
    fs.writeFileSync(path.join(dir, 'events.txt'), events.join('\n') + '\n');
    fs.writeFileSync(
      path.join(dir, 'options.json'),
      JSON.stringify({ ...o, log: undefined }, null, 2) + '\n',
    );
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  return { seed: o.seed, verdict, reasons, summary, history, windows, membership, check, dir, stats };
}

/** `tsraft serve`'s defaults (src/node/node.ts): tick 50 ms, election timeout 12 ticks. */
const DEFAULT_TICK_MS = 50;
const DEFAULT_ELECTION_TICKS = 12;

/** The election timeout's lower bound, ms, from the server flags (or the defaults). */
function electionMs(args: readonly string[]): number {
  const flag = (name: string): number | undefined => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : undefined;
  };
  return (flag('--tick-ms') ?? DEFAULT_TICK_MS) * (flag('--election-ticks') ?? DEFAULT_ELECTION_TICKS);
}

// ------------------------------------------------------------------ phases

/** Until the leader lists a client URL for every member (followers forward to it). */
async function waitForPublishedUrls(cluster: FaultCluster): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const l = await cluster.leader();
    if (l && l.view.members.every((m) => m.clientUrl !== null)) return;
    await sleep(50);
  }
}

/**
 * Recovered: a leader, every running member healthy (knows the leader, applied what it
 * knows committed), and a workload write invoked after the heal acknowledged. Returns the
 * time from the heal to that acknowledgement.
 */
async function waitForRecovery(
  cluster: FaultCluster,
  rec: HistoryRecorder,
  healAt: number,
  timeoutMs: number,
): Promise<{ ms?: number; why: string }> {
  const deadline = performance.now() + timeoutMs;
  let why = 'no leader';
  let from = 0;
  let firstAck: number | undefined;
  while (performance.now() < deadline) {
    for (; from < rec.ops.length; from++) {
      const op = rec.ops[from]!;
      if (firstAck === undefined && op.f !== 'get' && op.outcome === 'ok' && op.invoke >= healAt)
        firstAck = op.complete!;
    }
    const l = await cluster.leader();
    if (!l) why = 'no leader';
    else {
      const unhealthy: string[] = [];
      await Promise.all(
        cluster.live().map(async (m) => {
          try {
            const r = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
            await r.arrayBuffer();
            if (r.status !== 200) unhealthy.push(m.name);
          } catch {
            unhealthy.push(m.name);
          }
        }),
      );
      if (unhealthy.length > 0) why = `unhealthy: ${unhealthy.join(' ')}`;
      else if (firstAck === undefined) why = 'no write acknowledged since the heal';
      else return { ms: Math.round(firstAck - healAt), why: '' };
    }
    await sleep(100);
  }
  return { why };
}

/**
 * Reads every key linearizably (recorded in the history), within `budgetMs` in all; returns
 * the keys it could not read.
 */
async function finalReads(
  cluster: FaultCluster,
  rec: HistoryRecorder,
  keys: string[],
  budgetMs: number,
): Promise<string[]> {
  const kv = new KvClient({
    endpoints: cluster.live().map((m) => m.clientUrl),
    timeoutMs: 2000,
    deadlineMs: 4000,
  });
  const deadline = performance.now() + budgetMs;
  const failed: string[] = [];
  const queue = [...keys];
  const reader = async (): Promise<void> => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      let ok = false;
      for (let attempt = 0; attempt < 3 && !ok && performance.now() < deadline; attempt++) {
        const op = rec.invoke({ process: 'final', key, f: 'get', via: 'final' });
        try {
          const r = await kv.get(key);
          rec.complete(
            op,
            r === undefined
              ? { outcome: 'ok', value: null }
              : {
                  outcome: 'ok',
                  value: Buffer.from(r.value).toString('utf8'),
                  result: { modIndex: r.modIndex },
                },
          );
          ok = true;
        } catch (e) {
          rec.complete(op, { outcome: 'fail', error: 'final-read', code: (e as Error).message });
        }
      }
      if (!ok) failed.push(key);
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, reader));
  } finally {
    kv.close();
  }
  return failed;
}

interface Item {
  key: string;
  value: string;
  modIndex: number;
}

/** Every running member's local state (stale reads) at one applied index must be the same. */
async function compareReplicas(cluster: FaultCluster, findings: string[], waitMs: number): Promise<string[]> {
  const deadline = performance.now() + waitMs;
  let last = '';
  while (performance.now() < deadline) {
    const states = await Promise.all(
      cluster.live().map(async (m) => {
        try {
          const r = await fetch(`${m.clientUrl}/v1/kv?consistency=stale&limit=100000`, {
            signal: AbortSignal.timeout(2000),
          });
          const b = (await r.json()) as { items: Item[]; raftIndex: number };
          return { m: m.name, index: b.raftIndex, items: b.items };
        } catch {
          return undefined;
        }
      }),
    );
    const got = states.filter((s): s is NonNullable<typeof s> => s !== undefined);
    const indexes = new Set(got.map((s) => s.index));
    if (got.length === states.length && indexes.size === 1) {
      const ref = got[0]!;
      const text = (items: Item[]): string =>
        items.map((i) => `${i.key}=${i.value}@${i.modIndex}`).join('\n');
      const refText = text(ref.items);
      for (const s of got.slice(1)) {
        if (text(s.items) === refText) continue;
        const a = new Map(ref.items.map((i) => [i.key, i]));
        const diffs: string[] = [];
        for (const i of s.items) {
          const r = a.get(i.key);
          if (!r || r.value !== i.value || r.modIndex !== i.modIndex)
            diffs.push(
              `${i.key}: ${s.m} has ${i.value}@${i.modIndex}, ${ref.m} has ${r ? `${r.value}@${r.modIndex}` : 'nothing'}`,
            );
        }
        findings.push(
          `replicas diverged at applied index ${ref.index}: ${diffs.slice(0, 5).join('; ') || 'different key sets'}`,
        );
      }
      return [
        `replicas: ${got.length} members identical at applied index ${ref.index} (${ref.items.length} keys)`,
      ];
    }
    last = got.map((s) => `${s.m}@${s.index}`).join(' ');
    await sleep(200);
  }
  return [`replicas: not compared (applied indexes did not settle: ${last})`];
}

// ------------------------------------------------------------------ report

/** The cluster gave a definite answer: ok, or a refusal that observed the key (412). */
const served = (op: RecordedOp): boolean =>
  op.outcome === 'ok' || (op.outcome === 'fail' && op.error === 'precondition');

function availability(ops: readonly RecordedOp[], from: number, to: number): string {
  let ok = 0;
  let n = 0;
  let wOk = 0;
  let w = 0;
  for (const op of ops) {
    if (op.via === 'final' || op.invoke < from || op.invoke >= to) continue;
    n++;
    if (served(op)) ok++;
    if (op.f !== 'get') {
      w++;
      if (served(op)) wOk++;
    }
  }
  return `avail ${pct(ok, n)} (writes ${pct(wOk, w).trim()}, ${n} ops)`;
}

function recoveryAfter(ops: readonly RecordedOp[], at: number): number | undefined {
  let best: number | undefined;
  for (const op of ops) {
    if (op.f === 'get' || op.outcome !== 'ok' || op.invoke < at || op.via === 'final') continue;
    const t = op.complete! - at;
    if (best === undefined || t < best) best = t;
  }
  return best;
}

function formatSummary(r: {
  o: RunOptions;
  verdict: Verdict;
  reasons: string[];
  history: RecordedOp[];
  windows: FaultWindow[];
  membership: MembershipEvent[];
  check: CheckOutcome | undefined;
  stats: RunResult['stats'];
  events: string[];
  finalNotes: string[];
  dir: string | undefined;
}): string {
  const { o, history, stats } = r;
  const lines: string[] = [];
  lines.push(
    `tsraft fault run  seed=${formatSeed(o.seed)}  nodes=${o.nodes}  time=${o.timeS}s  nemesis=${o.nemeses.join(',')}  clients=${o.clients}${o.bugs?.length ? `  BUGS=${o.bugs.join(',')}` : ''}`,
  );
  const byKind = new Map<string, { ok: number; fail: number; info: number }>();
  for (const h of history) {
    const k = h.via === 'final' ? 'final-read' : h.consistency === 'lease' ? 'get(lease)' : h.f;
    const e = byKind.get(k) ?? { ok: 0, fail: 0, info: 0 };
    e[h.outcome]++;
    byKind.set(k, e);
  }
  lines.push(
    `ops: ${stats.ops} (ok ${stats.ok}, fail ${stats.fail}, info ${stats.info})  ` +
      [...byKind].map(([k, e]) => `${k} ${e.ok}/${e.fail}/${e.info}`).join('  '),
  );
  lines.push(
    `faults: ${r.windows.length} windows${r.membership.length ? `, ${r.membership.length} membership changes` : ''}`,
  );
  for (const w of r.windows) {
    const rec = recoveryAfter(history, w.heal);
    lines.push(
      `  #${w.n} ${(w.start / 1000).toFixed(1)}s-${(w.heal / 1000).toFixed(1)}s ${w.description}\n` +
        `      ${availability(history, w.start, w.heal)}; after heal: ${rec === undefined ? 'no write acknowledged' : `first write acknowledged in ${Math.round(rec)} ms`}` +
        (w.notes.length ? `\n      ${w.notes.join('; ')}` : ''),
    );
  }
  for (const m of r.membership) {
    lines.push(
      `  membership ${(m.at / 1000).toFixed(1)}s-${(m.done / 1000).toFixed(1)}s ${m.description}: ${m.outcome}`,
    );
  }
  const quiet = history.filter(
    (h) => h.via !== 'final' && !r.windows.some((w) => h.invoke >= w.start && h.invoke < w.heal),
  );
  lines.push(`outside fault windows: ${availability(quiet, -Infinity, Infinity)}`);
  const px = stats.proxy;
  lines.push(
    `network: ${px.connections} proxied connections, ${px.refused} refused, ${px.held} black-holed, ${px.resets} reset; highest term ${stats.maxTerm}`,
  );
  lines.push(
    `final heal: ${stats.recoveryMs !== undefined ? `recovered in ${stats.recoveryMs} ms (leader, all members healthy, a write acknowledged)` : 'did NOT recover'}`,
  );
  lines.push(...r.finalNotes);
  if (r.check) lines.push(r.check.text);
  lines.push(
    `verdict: ${r.verdict.toUpperCase()}${r.verdict === 'pass' ? '' : ''}  (${(stats.ms / 1000).toFixed(1)} s)`,
  );
  for (const reason of r.reasons) lines.push(`  - ${reason}`);
  if (r.verdict !== 'pass') {
    lines.push(`reproduce: ${commandLine(o)}`);
    if (r.dir) {
      lines.push(`kept: ${r.dir} (history.jsonl, logs/, summary.txt)`);
      lines.push(`re-check: npm run test:fault -- --check ${path.join(r.dir, 'history.jsonl')}`);
    }
  }
  return lines.join('\n');
}
