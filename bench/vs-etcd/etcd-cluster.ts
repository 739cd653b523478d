/**
 * A private 3-member etcd cluster for the benchmark: its own free ports on 127.0.0.1, its own
 * data directories under a temp dir, started and stopped by us. A system-wide etcd (a service
 * on 2379/2380, its data in /var/lib/etcd) is never touched: no shared port, no shared
 * directory, no signal sent to any process we did not start.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePorts } from '../../test/support/process-cluster.js';
import { H2Channel, parseStatus, STATUS, STATUS_FRAME } from './etcd-client.js';

export interface EtcdBinary {
  readonly bin: string;
  readonly version: string;
}

function etcdVersion(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', env: cleanEnv() });
  if (r.status !== 0) return undefined;
  return /etcd Version:\s*(\S+)/.exec(r.stdout)?.[1];
}

function findOnPath(name: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(':').filter(Boolean);
  for (const d of [...dirs, '/usr/bin', '/usr/local/bin', '/usr/sbin']) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(cmd: string[], log: (s: string) => void): boolean {
  const asRoot = process.getuid?.() === 0;
  const argv = asRoot ? cmd : ['sudo', '-n', ...cmd];
  log(`$ ${argv.join(' ')}`);
  const r = spawnSync(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

/**
 * The etcd server binary: $ETCD_BIN, else `etcd` on the PATH, else Debian's `etcd-server`
 * package installed with apt-get (etcd 3.4). Installing only adds the package; if its
 * service starts on a machine with systemd, it keeps running untouched on its own ports.
 */
export function ensureEtcd(log: (s: string) => void): EtcdBinary {
  const explicit = process.env['ETCD_BIN'];
  let bin = explicit ?? findOnPath('etcd');
  if (bin === undefined) {
    log('etcd not found: installing Debian package etcd-server');
    if (!run(['apt-get', 'install', '-y', 'etcd-server'], log)) {
      // The package lists may be missing or stale on a fresh machine.
      run(['apt-get', 'update'], log);
      if (!run(['apt-get', 'install', '-y', 'etcd-server'], log)) {
        throw new Error('could not install etcd-server (apt-get install -y etcd-server failed)');
      }
    }
    bin = findOnPath('etcd');
    if (bin === undefined) throw new Error('etcd-server installed but no etcd binary found');
  }
  const version = etcdVersion(bin);
  if (version === undefined) throw new Error(`${bin} --version failed`);
  return { bin, version };
}

/** Other etcd processes on the machine (left alone; reported since they share the CPU). */
export function foreignEtcds(own: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || own.has(Number(d))) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'etcd') out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** The environment for etcd: without ETCD_* variables, which etcd would read as flags. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  // etcd 3.4 refuses to start on other architectures unless told.
  if (process.arch === 'arm64') env['ETCD_UNSUPPORTED_ARCH'] = 'arm64';
  return env;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  proc: ChildProcess | undefined;
  readonly log: string[];
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];

  private constructor(
    private readonly bin: string,
    readonly root: string,
  ) {}

  /** Starts `size` members with data under `root` (created; removed by the caller). */
  static async start(bin: string, root: string, size = 3): Promise<EtcdCluster> {
    fs.mkdirSync(root, { recursive: true });
    const c = new EtcdCluster(bin, root);
    const ports = await freePorts(size * 2);
    for (let i = 0; i < size; i++) {
      c.members.push({
        name: `e${i + 1}`,
        clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: path.join(root, `e${i + 1}`),
        proc: undefined,
        log: [],
      });
    }
    const initial = c.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of c.members) c.spawn(m, initial);
    return c;
  }

  private spawn(m: EtcdMember, initialCluster: string): void {
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-peer-urls',
      m.peerUrl,
      '--initial-advertise-peer-urls',
      m.peerUrl,
      '--listen-client-urls',
      m.clientUrl,
      '--advertise-client-urls',
      m.clientUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `bench-${path.basename(this.root)}`,
      // 3.4: --log-level needs the zap logger (the default capnslog ignores it).
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
      '--log-level',
      'warn',
    ];
    const proc = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
    m.proc = proc;
    const keep = (b: Buffer): void => {
      for (const l of b.toString().split('\n')) if (l) m.log.push(l);
      if (m.log.length > 500) m.log.splice(0, m.log.length - 500);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('error', (e) => m.log.push(`spawn error: ${e.message}`));
  }

  pids(): number[] {
    return this.members.map((m) => m.proc?.pid ?? 0);
  }

  /** Each member's view: its member id and the leader it knows (0 if none), via Maintenance/Status. */
  private async statuses(): Promise<({ memberId: bigint; leader: bigint; version: string } | undefined)[]> {
    return Promise.all(
      this.members.map(async (m) => {
        let ch: H2Channel | undefined;
        try {
          ch = await H2Channel.connect(m.clientUrl, 1000);
          return parseStatus(await ch.call(STATUS, STATUS_FRAME));
        } catch {
          return undefined;
        } finally {
          await ch?.close();
        }
      }),
    );
  }

  /** Waits until every member names the same leader; returns it. */
  async waitForLeader(timeoutMs = 30_000): Promise<{ member: EtcdMember; version: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.members) {
        if (m.proc && (m.proc.exitCode !== null || m.proc.signalCode !== null)) {
          throw new Error(
            `etcd ${m.name} exited (${m.proc.exitCode ?? m.proc.signalCode}):\n${m.log.slice(-20).join('\n')}`,
          );
        }
      }
      const st = await this.statuses();
      const leader = st[0]?.leader;
      if (leader && st.every((s) => s !== undefined && s.leader === leader)) {
        const i = st.findIndex((s) => s?.memberId === leader);
        const member = this.members[i];
        if (member) return { member, version: st[i]?.version ?? '' };
      }
      if (Date.now() > deadline) {
        throw new Error(
          `etcd: no leader within ${timeoutMs} ms\n${this.members.map((m) => `${m.name}: ${m.log.slice(-5).join('\n')}`).join('\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** SIGTERM to each member we started, SIGKILL after `graceMs`. Data stays (the caller removes it). */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        const p = m.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        m.proc = undefined;
      }),
    );
  }

  /** Immediate SIGKILL of our members (on interrupt). */
  killNow(): void {
    for (const m of this.members) if (m.proc && m.proc.exitCode === null) m.proc.kill('SIGKILL');
  }
}
