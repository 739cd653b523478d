/**
 * The closed-loop load: N clients, each with one request in flight at a time, sending the
 * next as soon as the previous answered, to random keys among KEY_COUNT, for a fixed time.
 * Also measures the CPU the servers and this process spent meanwhile.
 */
import { performance } from 'node:perf_hooks';
import { cpuProbeMs, cpuSeconds, machineBusySeconds } from './proc-stats.js';
import { KEY_COUNT, type Conn, type ServerProcess } from './targets.js';

export type Kind = 'write' | 'read';

export interface LevelResult {
  readonly kind: Kind;
  readonly clients: number;
  /** Wall time from the first request to the last answer. */
  readonly seconds: number;
  readonly ops: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** CPU seconds each server spent during the level (same order as the target's servers). */
  readonly serverCpuSeconds: number[];
  /** All servers' CPU per successful operation, µs. */
  readonly serverCpuUsPerOp: number;
  /** This process's (the load generator's) CPU per successful operation, µs. */
  readonly clientCpuUsPerOp: number;
  /**
   * CPU that other processes on the machine used during the level, in cores (busy time of
   * the whole machine minus the servers' and the load generator's, per second): the noise.
   */
  readonly otherCores: number;
  /**
   * {@link cpuProbeMs} just before the level (servers idle): how fast the machine was. Levels
   * whose probes differ much ran on a machine of different speed; compare with care.
   */
  readonly probeMs: number;
}

/** Nearest-rank percentile of sorted samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runLevel(
  conn: Conn,
  kind: Kind,
  clients: number,
  seconds: number,
  servers: readonly ServerProcess[],
): Promise<LevelResult> {
  // Latencies in a preallocated typed array: no per-operation allocation.
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let firstError: string | null = null;
  const op = kind === 'write' ? conn.put.bind(conn) : conn.get.bind(conn);

  const probeMs = cpuProbeMs();
  const cpu0 = servers.map((s) => cpuSeconds(s.pid));
  const self0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;

  const worker = async (client: number): Promise<void> => {
    while (performance.now() < end) {
      const key = Math.floor(Math.random() * KEY_COUNT);
      const t = performance.now();
      try {
        await op(client, key);
        if (n === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[n++] = performance.now() - t;
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
        await sleep(10); // a failing server must not turn the loop into a spin
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => worker(c)));

  const elapsed = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const busy = machineBusySeconds() - busy0;
  const cpu = servers.map((s, i) => cpuSeconds(s.pid) - (cpu0[i] ?? NaN));
  const sorted = lat.subarray(0, n).sort();
  const serverCpu = cpu.reduce((a, b) => a + b, 0);
  return {
    kind,
    clients,
    seconds: elapsed,
    ops: n,
    opsPerSec: n / elapsed,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[n - 1] ?? NaN,
    errors,
    firstError,
    serverCpuSeconds: cpu,
    serverCpuUsPerOp: (serverCpu * 1e6) / n,
    clientCpuUsPerOp: (self.user + self.system) / n,
    otherCores: Math.max(0, busy - serverCpu - (self.user + self.system) / 1e6) / elapsed,
    probeMs,
  };
}

/** Writes every key once (in order, `clients` at a time): the warm-up, and reads then always hit. */
export async function populate(conn: Conn, clients: number): Promise<{ seconds: number; errors: number }> {
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  const worker = async (client: number): Promise<void> => {
    while (next < KEY_COUNT) {
      const key = next++;
      for (let attempt = 0; ; attempt++) {
        try {
          await conn.put(client, key);
          break;
        } catch (e) {
          errors++;
          if (attempt >= 20) throw new Error(`warm-up: key ${key} failed 20 times: ${(e as Error).message}`);
          await sleep(50);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => worker(c)));
  return { seconds: (performance.now() - t0) / 1000, errors };
}
