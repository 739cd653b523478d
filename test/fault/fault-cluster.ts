import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleChild } from '../support/child-bundle.js';
import net from 'node:net';
import { freePorts } from '../support/process-cluster.js';
import { NetworkProxy } from './proxy.js';
import type { Rng } from './rng.js';

/**
 * A cluster of real `tsraft serve` processes for the fault suite: each with its own data
 * directory, and every peer link (and every request a follower forwards to the leader)
 * passing through a {@link NetworkProxy} in this process.
 *
 * Founding members get their own `--initial-cluster`, in which every other member's peer URL
 * is a proxy port unique to the directed pair. Members added at run time are recorded in the
 * log with the address of their inbound proxy (shared by all senders; it tells them apart by
 * the handshake). Each member advertises a proxy in front of its client port as its client
 * URL, so forwarded requests cross the same partitions; the suite's clients talk to the real
 * client ports directly and reach every server whatever the partition.
 */
const here = path.dirname(fileURLToPath(import.meta.url));

export type MemberState = 'new' | 'running' | 'paused' | 'down' | 'removed';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms since the cluster was created. */
  at: number;
  /** We killed or stopped it. */
  expected: boolean;
}

export interface FaultMember {
  readonly name: string;
  readonly founder: boolean;
  /** The real client URL (the suite's clients use it). */
  readonly clientUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** The client URL it advertises: a proxy that applies the forwarding links' faults. */
  advertisedClientUrl: string;
  /** Its peer URL as recorded in the log (members added at run time): its inbound proxy. */
  inboundPeerUrl: string;
  readonly dataDir: string;
  state: MemberState;
  proc: ChildProcess | undefined;
  readonly log: string[];
  readonly exits: Exit[];
  /** How this member's disk can be filled, if it was chosen for disk faults. */
  disk?: 'tmpfs' | 'inject';
  /** Mount point of its tmpfs. */
  mount?: string;
  /** Its disk is full now (so a fail-stop exit is expected). */
  diskFull?: boolean;
}

export interface FaultClusterOptions {
  nodes: number;
  rng: Rng;
  /** Extra environment for every server (e.g. TSRAFT_UNSAFE_TEST_BUGS). */
  env?: Record<string, string>;
  /** Extra `tsraft serve` flags. */
  args?: string[];
  /** Give this many members (the last founders) a disk that can be filled. */
  diskMembers?: number;
  /** `auto`: a small tmpfs when mounting works (root), else injected ENOSPC. */
  diskMode?: 'auto' | 'tmpfs' | 'inject';
}

const TMPFS_SIZE_MB = 96;

export class FaultCluster {
  readonly members: FaultMember[] = [];
  readonly proxy: NetworkProxy;
  readonly root: string;
  private script = '';
  private diskScript = '';
  private readonly pairPorts = new Map<string, number>();
  private readonly t0 = performance.now();
  private nextId = 1;
  /** Called when a member exits without us asking (e.g. fail-stop). */
  onUnexpectedExit: ((m: FaultMember, e: Exit) => void) | undefined;

  constructor(private readonly o: FaultClusterOptions) {
    this.proxy = new NetworkProxy(o.rng.fork(0xfeed));
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsraft-fault-'));
  }

  /** ms since the cluster was created. */
  now(): number {
    return performance.now() - this.t0;
  }

  async init(): Promise<void> {
    this.script = bundleChild(path.join(here, '..', 'support', 'serve-entry.ts'), this.root);
    for (let i = 0; i < this.o.nodes; i++) await this.newMember(true);
    for (const a of this.members) {
      for (const b of this.members) {
        if (a === b) continue;
        this.pairPorts.set(`${a.name}>${b.name}`, await this.proxy.listenPair(a.name, b.name, b.peerPort));
      }
    }
    const disks = Math.min(this.o.diskMembers ?? 0, this.members.length);
    if (disks > 0) {
      let mode = this.o.diskMode ?? 'auto';
      for (const m of this.members.slice(this.members.length - disks)) {
        if (mode !== 'inject' && this.mountTmpfs(m)) m.disk = 'tmpfs';
        else if (mode === 'tmpfs') throw new Error(`cannot mount a tmpfs for ${m.name} (needs root)`);
        else {
          mode = 'inject';
          m.disk = 'inject';
        }
      }
      if (this.members.some((m) => m.disk === 'inject'))
        this.diskScript = bundleChild(path.join(here, 'serve-disk-entry.ts'), this.root);
    }
  }

  private async newMember(founder: boolean): Promise<FaultMember> {
    const name = `n${this.nextId++}`;
    const [clientPort, peerPort] = (await reservePorts(2)) as [number, number];
    const m: FaultMember = {
      name,
      founder,
      clientUrl: `http://127.0.0.1:${clientPort}`,
      clientPort,
      peerPort,
      advertisedClientUrl: '',
      inboundPeerUrl: '',
      dataDir: path.join(this.root, name, 'data'),
      state: 'new',
      proc: undefined,
      log: [],
      exits: [],
    };
    fs.mkdirSync(path.dirname(m.dataDir), { recursive: true });
    m.advertisedClientUrl = `http://127.0.0.1:${await this.proxy.listenHttp(name, clientPort)}`;
    m.inboundPeerUrl = `http://127.0.0.1:${await this.proxy.listenInbound(name, peerPort)}`;
    this.members.push(m);
    return m;
  }

  /**
   * A fresh member to add at run time: ports, proxies and data directory, not started. Add it
   * through the API with {@link FaultMember.inboundPeerUrl} as its peer URL, then {@link start} it.
   */
  async prepareJoiner(): Promise<FaultMember> {
    const m = await this.newMember(false);
    for (const f of this.members) {
      if (f === m || !f.founder) continue;
      this.pairPorts.set(`${m.name}>${f.name}`, await this.proxy.listenPair(m.name, f.name, f.peerPort));
    }
    return m;
  }

  private mountTmpfs(m: FaultMember): boolean {
    const mnt = path.dirname(m.dataDir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE_MB}m`, 'tmpfs', mnt], {
        stdio: 'ignore',
      });
    } catch {
      return false;
    }
    m.mount = mnt;
    return true;
  }

  member(name: string): FaultMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** Members that are part of the cluster (not removed, ever started). */
  active(): FaultMember[] {
    return this.members.filter((m) => m.state !== 'removed' && m.state !== 'new');
  }

  /** Members whose process runs and is not paused. */
  live(): FaultMember[] {
    return this.members.filter((m) => m.state === 'running');
  }

  /** The `--initial-cluster` of `m`: the real URL for itself, proxies for the others. */
  private initialCluster(m: FaultMember): string {
    const known = this.members.filter(
      (x) => x === m || x.founder || (x.state !== 'new' && x.state !== 'removed' && !m.founder),
    );
    return known
      .map((x) => {
        if (x === m) return `${x.name}=http://127.0.0.1:${x.peerPort}`;
        const pair = this.pairPorts.get(`${m.name}>${x.name}`);
        return `${x.name}=${pair !== undefined ? `http://127.0.0.1:${pair}` : x.inboundPeerUrl}`;
      })
      .join(',');
  }

  /** Starts (or restarts) a member's process. */
  start(name: string): void {
    const m = this.member(name);
    if (m.proc) throw new Error(`${name} is already running`);
    const script = m.disk === 'inject' ? this.diskScript : this.script;
    const proc = spawn(
      process.execPath,
      [
        script,
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-peer-urls',
        `http://127.0.0.1:${m.peerPort}`,
        '--listen-client-urls',
        m.clientUrl,
        '--advertise-client-urls',
        m.advertisedClientUrl,
        '--initial-cluster',
        this.initialCluster(m),
        '--initial-cluster-state',
        m.founder ? 'new' : 'existing',
        '--log-level',
        'info',
        ...(this.o.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.o.env } },
    );
    m.proc = proc;
    m.state = 'running';
    const keep = (b: Buffer): void => {
      for (const l of b.toString().split('\n')) if (l) m.log.push(`${Math.round(this.now())} ${l}`);
      if (m.log.length > 5000) m.log.splice(0, m.log.length - 5000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.once('exit', (code, signal) => {
      const expected = (proc as ChildProcess & { expectedExit?: boolean }).expectedExit === true;
      const e: Exit = { code, signal, at: this.now(), expected };
      m.exits.push(e);
      if (m.proc === proc) {
        m.proc = undefined;
        if (m.state !== 'removed') m.state = 'down';
      }
      if (!expected) this.onUnexpectedExit?.(m, e);
    });
  }

  private async signal(m: FaultMember, sig: NodeJS.Signals): Promise<number | null> {
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    (p as ChildProcess & { expectedExit?: boolean }).expectedExit = true;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    if (m.state === 'paused' && sig !== 'SIGKILL') p.kill('SIGCONT');
    p.kill(sig);
    return exited;
  }

  /** SIGKILL: nothing is flushed. */
  async kill(name: string): Promise<void> {
    await this.signal(this.member(name), 'SIGKILL');
  }

  /** SIGTERM: graceful stop. */
  async stop(name: string): Promise<number | null> {
    return this.signal(this.member(name), 'SIGTERM');
  }

  /** SIGSTOP: the process is frozen (its sockets stay open, its timers stop). */
  pause(name: string): void {
    const m = this.member(name);
    if (m.state !== 'running' || !m.proc) return;
    m.proc.kill('SIGSTOP');
    m.state = 'paused';
  }

  resume(name: string): void {
    const m = this.member(name);
    if (m.state !== 'paused' || !m.proc) return;
    m.proc.kill('SIGCONT');
    m.state = 'running';
  }

  /** Marks a member removed from the cluster and stops its process. */
  async retire(name: string): Promise<void> {
    const m = this.member(name);
    await this.kill(name);
    m.state = 'removed';
  }

  // ------------------------------------------------------------------ disks

  /**
   * Fills `m`'s disk: with a tmpfs, a ballast file takes every free byte (the node fails at
   * its next write needing space: new files such as the hard state's, or a new segment);
   * injected, the process fails every write from now on.
   */
  fillDisk(name: string): void {
    const m = this.member(name);
    m.diskFull = true;
    if (m.disk === 'inject') {
      m.proc?.kill('SIGUSR2');
      return;
    }
    if (m.disk !== 'tmpfs' || !m.mount) throw new Error(`${name} has no fillable disk`);
    const fd = fs.openSync(path.join(m.mount, 'ballast'), 'a');
    const big = Buffer.alloc(1 << 20);
    const small = Buffer.alloc(4096);
    try {
      for (const buf of [big, small]) {
        for (;;) {
          try {
            fs.writeSync(fd, buf);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw e;
          }
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Frees the disk again (the member must be restarted if it stopped). */
  freeDisk(name: string): void {
    const m = this.member(name);
    m.diskFull = false;
    if (m.mount) fs.rmSync(path.join(m.mount, 'ballast'), { force: true });
  }

  // ------------------------------------------------------------------ status

  /** `GET /v1/cluster` of one member, or undefined. */
  async status(m: FaultMember, timeoutMs = 500): Promise<ClusterView | undefined> {
    if (m.state !== 'running') return undefined;
    try {
      const r = await fetch(`${m.clientUrl}/v1/cluster`, { signal: AbortSignal.timeout(timeoutMs) });
      if (r.status !== 200) return undefined;
      return (await r.json()) as ClusterView;
    } catch {
      return undefined;
    }
  }

  /** The member that says it leads with the highest term, if any. */
  async leader(): Promise<{ member: FaultMember; view: ClusterView } | undefined> {
    const views = await Promise.all(this.live().map(async (m) => ({ m, v: await this.status(m) })));
    let best: { member: FaultMember; view: ClusterView } | undefined;
    for (const { m, v } of views) {
      if (v && v.leader === m.name && (!best || v.term > best.view.term)) best = { member: m, view: v };
    }
    return best;
  }

  async waitForLeader(timeoutMs = 15_000): Promise<{ member: FaultMember; view: ClusterView }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (performance.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms\n${this.tails(5)}`);
      await sleep(50);
    }
  }

  /** The last `n` log lines of every member. */
  tails(n: number): string {
    return this.members.map((m) => `--- ${m.name} (${m.state})\n${m.log.slice(-n).join('\n')}`).join('\n');
  }

  /** Writes every member's log to `dir`. */
  saveLogs(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    for (const m of this.members) {
      fs.writeFileSync(path.join(dir, `${m.name}.log`), m.log.join('\n') + '\n');
    }
  }

  async destroy(): Promise<void> {
    for (const m of this.members) {
      if (m.proc && m.state === 'paused') m.proc.kill('SIGCONT');
    }
    await Promise.all(this.members.map((m) => this.signal(m, 'SIGKILL')));
    await this.proxy.close();
    for (const m of this.members) {
      if (m.mount) {
        try {
          execFileSync('umount', [m.mount], { stdio: 'ignore' });
        } catch {
          // best effort: a busy mount is released when the last file closes
        }
      }
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** `GET /v1/cluster`. */
export interface ClusterView {
  name?: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  members: {
    name: string;
    peerUrl: string | null;
    clientUrl: string | null;
    role: string;
    matchIndex?: number;
  }[];
}

const handedOut = new Set<number>();

/**
 * Free ports for servers, chosen below the kernel's ephemeral range: a port picked from that
 * range (bind to 0, release) can be taken by any outgoing connection — and the proxy makes
 * many — before the server that was meant to get it starts (or restarts) and binds it.
 */
async function reservePorts(n: number): Promise<number[]> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return freePorts(n);
  }
  if (!Number.isInteger(low) || low < 12000) return freePorts(n);
  const out: number[] = [];
  for (let tries = 0; out.length < n && tries < 1000; tries++) {
    const port = 10000 + Math.floor(Math.random() * (low - 10000));
    if (handedOut.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!ok) continue;
    handedOut.add(port);
    out.push(port);
  }
  if (out.length < n) throw new Error('no free ports below the ephemeral range');
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
