import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleChild } from './child-bundle.js';

/**
 * A cluster of real `tsraft serve` processes on loopback, each with its own data directory,
 * for integration and fault tests. The server is bundled once per test file so processes
 * start fast and always run the current sources.
 */
const here = path.dirname(fileURLToPath(import.meta.url));

/** Ports the OS says are free now (bound to port 0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    servers.push(s);
    ports.push((s.address() as net.AddressInfo).port);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  proc: ChildProcess | undefined;
  log: string[];
}

export class ProcessCluster {
  readonly members: Member[] = [];
  private readonly root: string;
  private script = '';

  /** Members n1..n`founders` bootstrap the cluster; later ones join with state `existing`. */
  founders: number;
  /** Extra environment for the server processes (e.g. TSRAFT_UNSAFE_TEST_BUGS). */
  env: Record<string, string> = {};
  /** Extra node flags for the server processes (e.g. --cpu-prof). */
  nodeArgs: string[] = [];

  constructor(
    readonly size: number,
    private readonly extraArgs: string[] = [],
    founders?: number,
  ) {
    this.founders = founders ?? size;
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsraft-cluster-'));
  }

  async init(): Promise<void> {
    this.script = bundleChild(path.join(here, 'serve-entry.ts'), this.root);
    const ports = await freePorts(this.size * 2);
    for (let i = 0; i < this.size; i++) {
      const name = `n${i + 1}`;
      this.members.push({
        name,
        clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: path.join(this.root, name),
        proc: undefined,
        log: [],
      });
    }
  }

  member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** Starts (or restarts) a member's process. */
  start(name: string): void {
    const m = this.member(name);
    const founder = this.members.indexOf(m) < this.founders;
    const known = founder
      ? this.members.slice(0, this.founders)
      : [...this.members.slice(0, this.founders), m];
    const cluster = known.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const proc = spawn(
      process.execPath,
      [
        ...this.nodeArgs,
        this.script,
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-peer-urls',
        m.peerUrl,
        '--listen-client-urls',
        m.clientUrl,
        '--initial-cluster',
        cluster,
        '--initial-cluster-state',
        founder ? 'new' : 'existing',
        '--log-level',
        'info',
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } },
    );
    m.proc = proc;
    const keep = (b: Buffer): void => {
      for (const l of b.toString().split('\n')) if (l) m.log.push(l);
      if (m.log.length > 2000) m.log.splice(0, m.log.length - 2000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
  }

  /** Starts every founding member. */
  startAll(): void {
    for (const m of this.members.slice(0, this.founders)) this.start(m.name);
  }

  /** SIGKILL: no chance to flush anything. */
  async kill(name: string): Promise<void> {
    const m = this.member(name);
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    m.proc = undefined;
  }

  /** SIGTERM: graceful stop; resolves with the exit code. */
  async stop(name: string): Promise<number | null> {
    const m = this.member(name);
    const p = m.proc;
    if (!p || p.exitCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    const code = await exited;
    m.proc = undefined;
    return code;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m.name)));
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The member that says it is leader and that the others agree on, if any. */
  async leader(): Promise<Member | undefined> {
    for (const m of this.members) {
      if (!m.proc) continue;
      try {
        const r = await fetch(`${m.clientUrl}/v1/cluster`, { signal: AbortSignal.timeout(1000) });
        const c = (await r.json()) as { leader: string | null; name: string };
        if (c.leader && c.leader === m.name) return m;
      } catch {
        // not up yet
      }
    }
    return undefined;
  }

  async waitForLeader(timeoutMs = 15_000): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = await this.leader();
      if (l) return l;
      if (Date.now() > deadline) {
        throw new Error(
          `no leader within ${timeoutMs} ms\n${this.members.map((m) => `${m.name}: ${m.log.slice(-5).join('\n')}`).join('\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** PUT with a timeout; resolves with the status and JSON body (or throws on network errors). */
export async function put(
  base: string,
  key: string,
  value: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${base}/v1/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    body: value,
    headers,
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, body: await r.json() };
}

/** GET (linearizable by default): the value, or undefined on 404. */
export async function get(
  base: string,
  key: string,
  consistency = 'linearizable',
): Promise<{ status: number; value?: string }> {
  const r = await fetch(`${base}/v1/kv/${encodeURIComponent(key)}?consistency=${consistency}`, {
    signal: AbortSignal.timeout(5000),
  });
  if (r.status === 200) return { status: 200, value: await r.text() };
  await r.arrayBuffer();
  return { status: r.status };
}
