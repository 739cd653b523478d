/** CPU time and memory of a server process, from /proc (Linux). */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 on Linux). */
export const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && n > 0 ? n : 100;
})();

/** User + system CPU seconds of a process so far (all its threads), or NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[14 - 3]);
    const stime = Number(rest[15 - 3]);
    return (utime + stime) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** A /proc/<pid>/status size in MiB (VmHWM: peak resident set; VmRSS: now), or NaN. */
export function memMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The 1-minute load average. */
export function load1(): number {
  return os.loadavg()[0] ?? NaN;
}

/** CPU seconds the whole machine spent busy so far (all cores; /proc/stat minus idle and iowait). */
export function machineBusySeconds(): number {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const t = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest times are already in user/nice)
    const busy = t.slice(0, 8).reduce((a, b) => a + b, 0) - (t[3] ?? 0) - (t[4] ?? 0);
    return busy / CLK_TCK;
  } catch {
    return NaN;
  }
}

const PROBE_BLOCK = Buffer.alloc(64 * 1024, 7);

/**
 * Milliseconds a fixed CPU-bound task takes now (SHA-256 of 8 MiB, native code, median of 3),
 * run while the servers are idle: the raw speed of the (virtual) machine before each level.
 * In the runs recorded so far it stayed within 4.7–5.0 ms while both systems' throughput
 * drifted by up to 30% between rounds, so that drift is not raw CPU speed (more likely the
 * shared host's disk, memory or interrupts); a probe that moves is a sign to distrust a run.
 */
export function cpuProbeMs(): number {
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t = process.hrtime.bigint();
    const h = createHash('sha256');
    for (let i = 0; i < 128; i++) h.update(PROBE_BLOCK);
    h.digest();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times.sort((a, b) => a - b)[1]!;
}
