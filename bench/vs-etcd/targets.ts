/**
 * The two systems under test behind one interface: start a 3-node cluster, find its leader,
 * check a write reads back, open connections for N closed-loop clients (put / linearizable
 * get of key i), report the server processes, stop.
 */
import http from 'node:http';
import path from 'node:path';
import { ProcessCluster } from '../../test/support/process-cluster.js';
import { EtcdCluster } from './etcd-cluster.js';
import { H2Channel, PUT, putFrame, RANGE, rangeFrame, rangeValue } from './etcd-client.js';

export const KEY_COUNT = 10_000;
export const VALUE_BYTES = 256;
export const KEYS = Array.from({ length: KEY_COUNT }, (_, i) => `key${i}`);
export const VALUE = Buffer.alloc(VALUE_BYTES, 'v');

export type System = 'etcd' | 'tsraft';

export interface ServerProcess {
  readonly name: string;
  readonly role: 'leader' | 'follower';
  readonly pid: number;
}

/** Connections for `clients` closed-loop clients; client c uses its own slot. */
export interface Conn {
  put(client: number, key: number): Promise<void>;
  get(client: number, key: number): Promise<void>;
  close(): Promise<void>;
  /** A note on how the clients are connected (printed once). */
  readonly shape: string;
}

export interface Target {
  readonly system: System;
  readonly servers: readonly ServerProcess[];
  readonly leaderUrl: string;
  open(clients: number): Promise<Conn>;
  /** Graceful stop of every server process we started; the data stays on disk. */
  stop(): Promise<void>;
  /** SIGKILL now (interrupt path). */
  killNow(): void;
}

function checkEqual(got: Buffer | string | undefined, want: string, system: System): void {
  const g = got === undefined ? undefined : got.toString();
  if (g !== want) throw new Error(`${system}: wrote ${JSON.stringify(want)}, read back ${JSON.stringify(g)}`);
}

// ---------------------------------------------------------------------------------- etcd

class EtcdTarget implements Target {
  readonly system = 'etcd';
  private readonly putFrames = KEYS.map((k) => putFrame(Buffer.from(k), VALUE));
  private readonly rangeFrames = KEYS.map((k) => rangeFrame(Buffer.from(k)));

  constructor(
    private readonly cluster: EtcdCluster,
    readonly servers: readonly ServerProcess[],
    readonly leaderUrl: string,
    private readonly streamsPerSession: number,
  ) {}

  async open(clients: number): Promise<Conn> {
    const first = await H2Channel.connect(this.leaderUrl);
    const perSession = Math.max(1, Math.min(this.streamsPerSession, first.maxConcurrentStreams));
    const n = Math.ceil(clients / perSession);
    const channels = [first];
    for (let i = 1; i < n; i++) channels.push(await H2Channel.connect(this.leaderUrl));
    const { putFrames, rangeFrames } = this;
    return {
      shape: `${n} HTTP/2 connection${n > 1 ? 's' : ''} to the leader, up to ${perSession} concurrent streams each (server allows ${first.maxConcurrentStreams})`,
      async put(client, key) {
        await channels[client % n]!.call(PUT, putFrames[key]!);
      },
      async get(client, key) {
        const v = rangeValue(await channels[client % n]!.call(RANGE, rangeFrames[key]!));
        if (v === undefined || v.length !== VALUE_BYTES) throw new Error(`etcd: bad read of key ${key}`);
      },
      async close() {
        await Promise.all(channels.map((c) => c.close()));
      },
    };
  }

  /** A put then a linearizable range of the same key returns the value. */
  async verify(): Promise<void> {
    const ch = await H2Channel.connect(this.leaderUrl);
    try {
      const key = Buffer.from('vs-etcd-check');
      const value = `hello-${process.pid}-${Date.now()}`;
      await ch.call(PUT, putFrame(key, Buffer.from(value)));
      checkEqual(rangeValue(await ch.call(RANGE, rangeFrame(key))), value, 'etcd');
      if (rangeValue(await ch.call(RANGE, rangeFrame(Buffer.from('vs-etcd-absent')))) !== undefined) {
        throw new Error('etcd: an absent key read back a value');
      }
    } finally {
      await ch.close();
    }
  }

  stop(): Promise<void> {
    return this.cluster.stop();
  }

  killNow(): void {
    this.cluster.killNow();
  }
}

/** A 3-member etcd cluster under `root`, leader found, a write checked. */
export async function startEtcd(
  bin: string,
  root: string,
  streamsPerSession: number,
): Promise<{ target: Target; version: string }> {
  const cluster = await EtcdCluster.start(bin, root);
  try {
    const { member, version } = await cluster.waitForLeader();
    const servers = cluster.members.map((m): ServerProcess => ({
      name: m.name,
      role: m === member ? 'leader' : 'follower',
      pid: m.proc?.pid ?? 0,
    }));
    const target = new EtcdTarget(cluster, servers, member.clientUrl, streamsPerSession);
    await target.verify();
    return { target, version };
  } catch (e) {
    cluster.killNow();
    throw e;
  }
}

// -------------------------------------------------------------------------------- tsraft

function request(
  agent: http.Agent,
  url: URL,
  method: 'PUT' | 'GET',
  reqPath: string,
  body: Buffer | undefined,
  wantText = false,
): Promise<{ status: number; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: reqPath,
        method,
        agent,
        headers: body ? { 'content-length': body.length } : {},
      },
      (res) => {
        let bytes = 0;
        let text = '';
        const keepText = wantText || res.statusCode !== 200;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (keepText && text.length < 200) text += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

class TsraftTarget implements Target {
  readonly system = 'tsraft';
  private readonly paths = KEYS.map((k) => `/v1/kv/${k}`);

  constructor(
    private readonly cluster: ProcessCluster,
    readonly servers: readonly ServerProcess[],
    readonly leaderUrl: string,
  ) {}

  open(clients: number): Promise<Conn> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });
    const url = new URL(this.leaderUrl);
    const { paths } = this;
    return Promise.resolve({
      shape: `HTTP/1.1 keep-alive agent to the leader, one connection per client`,
      async put(_client, key) {
        const r = await request(agent, url, 'PUT', paths[key]!, VALUE);
        if (r.status !== 200) throw new Error(`tsraft: PUT ${r.status} ${r.text}`);
      },
      async get(_client, key) {
        const r = await request(agent, url, 'GET', paths[key]!, undefined);
        if (r.status !== 200 || r.bytes !== VALUE_BYTES) throw new Error(`tsraft: GET ${r.status} ${r.text}`);
      },
      close() {
        agent.destroy();
        return Promise.resolve();
      },
    });
  }

  async verify(): Promise<void> {
    const agent = new http.Agent({ keepAlive: true });
    try {
      const url = new URL(this.leaderUrl);
      const value = `hello-${process.pid}-${Date.now()}`;
      const w = await request(agent, url, 'PUT', '/v1/kv/vs-etcd-check', Buffer.from(value));
      if (w.status !== 200) throw new Error(`tsraft: check PUT ${w.status} ${w.text}`);
      const r = await request(agent, url, 'GET', '/v1/kv/vs-etcd-check', undefined, true);
      checkEqual(r.status === 200 ? r.text : undefined, value, 'tsraft');
      const a = await request(agent, url, 'GET', '/v1/kv/vs-etcd-absent', undefined);
      if (a.status !== 404) throw new Error(`tsraft: an absent key answered ${a.status}`);
    } finally {
      agent.destroy();
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all(
      this.cluster.members.map(async (m) => {
        const timer = setTimeout(() => void this.cluster.kill(m.name), graceMs);
        await this.cluster.stop(m.name);
        clearTimeout(timer);
      }),
    );
  }

  killNow(): void {
    for (const m of this.cluster.members) if (m.proc && m.proc.exitCode === null) m.proc.kill('SIGKILL');
  }
}

/**
 * A 3-member tsraft cluster (`tsraft serve` from the current sources, bundled), leader found,
 * a write checked. Returns the directory holding its data, for the caller to remove.
 */
export async function startTsraft(): Promise<{ target: Target; dataRoot: string }> {
  // BENCH_TSRAFT_ARGS: extra `tsraft serve` flags, for experiments (e.g. "--snapshot-count 100000").
  const extra = process.env['BENCH_TSRAFT_ARGS']?.trim();
  const cluster = new ProcessCluster(3, ['--log-level', 'warn', ...(extra ? extra.split(/\s+/) : [])]);
  // e.g. BENCH_TSRAFT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the servers.
  const nodeArgs = process.env['BENCH_TSRAFT_NODE_ARGS']?.trim();
  if (nodeArgs) cluster.nodeArgs = nodeArgs.split(/\s+/);
  await cluster.init();
  const dataRoot = path.dirname(cluster.members[0]!.dataDir);
  try {
    cluster.startAll();
    const leader = await cluster.waitForLeader();
    const servers = cluster.members.map((m): ServerProcess => ({
      name: m.name,
      role: m === leader ? 'leader' : 'follower',
      pid: m.proc?.pid ?? 0,
    }));
    const target = new TsraftTarget(cluster, servers, leader.clientUrl);
    await target.verify();
    return { target, dataRoot };
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
}
