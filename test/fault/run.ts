import { parseArgs } from 'node:util';
import { checkHistory } from './check.js';
import { readHistory } from './checker/history.js';
import type { RecordedOp } from './history-recorder.js';
import { MODES, NEMESES, type NemesisName } from './nemesis.js';
import { formatSeed, parseSeed } from './rng.js';
import { runFault, type RunOptions } from './runner.js';

/**
 * `npm run test:fault -- [flags]`: one fault-injection run against real processes, or the
 * re-check of a kept history. Exit code 0: pass; 1: a safety violation; 2: anything else that
 * is not a pass (no recovery, an unexpected crash, an inconclusive check, bad flags).
 */
const USAGE = `usage: npm run test:fault -- [flags]

  --nodes N            cluster size (default 5)
  --time S             seconds of workload under faults (default 60)
  --nemesis LIST       comma-separated: ${NEMESES.join(', ')}, or all (default partition,kill,pause)
  --clients N          concurrent clients (default 10)
  --seed S             decimal or 0x-hex (default: random, printed)
  --keys N             keys in use at a time (default 8)
  --bugs LIST          switch on deliberate bugs (TSRAFT_UNSAFE_TEST_BUGS): stale-reads, ack-before-persist, skip-up-to-date-check
  --mode NEMESIS=M/M   pin a nemesis' modes, e.g. kill=all or partition=isolate-leader/halves (repeatable)
  --hold MS-MS         how long each fault lasts (default 2500-6000)
  --quiet MS-MS        time between faults (default 1000-3000)
  --client-timeout MS  time limit of one request / one KvClient attempt (default 3000)
  --kv-fraction F      fraction of clients using KvClient, the rest plain HTTP (default 0.5)
  --unique F           fraction of puts to write-once keys (default 0.15)
  --disk MODE          auto (tmpfs as root, else injected ENOSPC), tmpfs or inject
  --out DIR            where kept runs go (default $TSRAFT_FAULT_OUT or <tmp>/tsraft-fault-runs)
  --keep               keep the run's history and logs even when it passes
  --check FILE         re-check a kept history.jsonl instead of running
`;

async function main(): Promise<number> {
  let v: Record<string, string | boolean | string[] | undefined>;
  try {
    v = parseArgs({
      args: process.argv.slice(2),
      options: {
        nodes: { type: 'string' },
        time: { type: 'string' },
        nemesis: { type: 'string' },
        clients: { type: 'string' },
        seed: { type: 'string' },
        keys: { type: 'string' },
        bugs: { type: 'string' },
        mode: { type: 'string', multiple: true },
        disk: { type: 'string' },
        hold: { type: 'string' },
        quiet: { type: 'string' },
        'client-timeout': { type: 'string' },
        'kv-fraction': { type: 'string' },
        unique: { type: 'string' },
        out: { type: 'string' },
        keep: { type: 'boolean' },
        check: { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (v['help']) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (typeof v['check'] === 'string') {
    const history = readHistory(v['check']) as RecordedOp[];
    const r = checkHistory(history, { timeLimitMs: 60_000 });
    process.stdout.write(
      `${r.text}\nverdict: ${r.valid === true ? 'PASS' : r.valid === false ? 'VIOLATION' : 'UNKNOWN'}\n`,
    );
    return r.valid === true ? 0 : r.valid === false ? 1 : 2;
  }
  const int = (name: string, dflt: number, min: number): number => {
    const s = v[name];
    if (s === undefined) return dflt;
    if (typeof s !== 'string' || !/^\d+$/.test(s) || Number(s) < min)
      throw new Error(`--${name} must be an integer >= ${min}`);
    return Number(s);
  };
  const span = (name: string): [number, number] | undefined => {
    const s = v[name];
    if (s === undefined) return undefined;
    const m = typeof s === 'string' ? /^(\d+)-(\d+)$/.exec(s) : null;
    if (!m || Number(m[1]) > Number(m[2])) throw new Error(`--${name} must look like 2000-3000 (ms)`);
    return [Number(m[1]), Number(m[2])];
  };
  const fraction = (name: string): number | undefined => {
    const s = v[name];
    if (s === undefined) return undefined;
    const f = Number(s);
    if (typeof s !== 'string' || !(f >= 0 && f <= 1)) throw new Error(`--${name} must be between 0 and 1`);
    return f;
  };
  let o: RunOptions;
  try {
    const hold = span('hold');
    const quiet = span('quiet');
    const kvFraction = fraction('kv-fraction');
    const uniqueFraction = fraction('unique');
    const timeoutMs = v['client-timeout'] === undefined ? undefined : int('client-timeout', 3000, 1);
    const nem = typeof v['nemesis'] === 'string' ? v['nemesis'] : 'partition,kill,pause';
    const nemeses = (nem === 'all' ? [...NEMESES] : nem.split(',').map((s) => s.trim())) as NemesisName[];
    for (const n of nemeses)
      if (!(NEMESES as readonly string[]).includes(n)) throw new Error(`unknown nemesis ${n}`);
    const modes: NonNullable<RunOptions['modes']> = {};
    for (const m of (v['mode'] as string[] | undefined) ?? []) {
      const [n, list] = m.split('=');
      if (!n || !list || !(NEMESES as readonly string[]).includes(n))
        throw new Error(`--mode ${m}: expected NEMESIS=MODE/MODE`);
      const ms = list.split('/');
      for (const x of ms)
        if (!MODES[n as NemesisName].includes(x))
          throw new Error(`--mode ${m}: ${n} has modes ${MODES[n as NemesisName].join(', ') || '(none)'}`);
      modes[n as NemesisName] = ms;
    }
    const disk = v['disk'];
    if (disk !== undefined && disk !== 'auto' && disk !== 'tmpfs' && disk !== 'inject')
      throw new Error('--disk must be auto, tmpfs or inject');
    o = {
      seed: typeof v['seed'] === 'string' ? parseSeed(v['seed']) : (Math.random() * 2 ** 32) >>> 0,
      nodes: int('nodes', 5, 1),
      timeS: int('time', 60, 1),
      nemeses,
      clients: int('clients', 10, 1),
      keys: int('keys', 8, 1),
      ...(typeof v['bugs'] === 'string' ? { bugs: v['bugs'].split(',') } : {}),
      ...(Object.keys(modes).length ? { modes } : {}),
      ...(disk ? { diskMode: disk } : {}),
      ...(hold ? { holdMs: hold } : {}),
      ...(quiet ? { quietMs: quiet } : {}),
      workload: {
        ...(kvFraction !== undefined ? { kvFraction } : {}),
        ...(uniqueFraction !== undefined ? { uniqueFraction } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs, deadlineMs: 2 * timeoutMs } : {}),
      },
      ...(typeof v['out'] === 'string' ? { out: v['out'] } : {}),
      keep: v['keep'] ? 'always' : 'failed',
      check: { timeLimitMs: 30_000 },
      log: (line) => process.stderr.write(`${line}\n`),
    };
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  process.stderr.write(`seed ${formatSeed(o.seed)}\n`);
  const r = await runFault(o);
  process.stdout.write(`${r.summary}\n`);
  return r.verdict === 'pass' ? 0 : r.verdict === 'violation' ? 1 : 2;
}

process.exitCode = await main();
