import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { parseServeArgs } from '../../../src/cli/serve.js';
import { startKv, type RunningKv } from '../../../src/kv/run.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';

/**
 * The manual snapshot trigger: `POST /v1/snapshot`, `tsraft snapshot`, the snapshot metrics,
 * and the `serve` flags of the snapshot policy.
 */
const names = ['n1', 'n2', 'n3'];
let members: RunningKv[] = [];

async function until<T>(f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  const net = new MemoryNetwork();
  const initialCluster = new Map(names.map((n, i) => [n, `http://127.0.0.1:${2380 + i}`]));
  members = await Promise.all(
    names.map((name) =>
      startKv({
        name,
        dataDir: 'unused',
        listenPeerUrl: 'http://127.0.0.1:0',
        listenClientUrl: 'http://127.0.0.1:0',
        initialCluster,
        initialClusterState: 'new',
        clusterSecret: 'x',
        storage: new MemoryStorage(),
        transport: net.transport(name),
        tickMs: 5,
        electionTicks: 10,
        heartbeatTicks: 1,
        snapshotCount: 0,
        snapshotCatchUpEntries: 2,
      }),
    ),
  );
  const leader = await until(() => members.find((m) => m.node.isLeader()));
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${leader.server.url()}/v1/kv/k${i}`, { method: 'PUT', body: `v${i}` });
    expect(r.status).toBe(200);
  }
  const target = leader.node.status().commit;
  await until(() => members.every((m) => m.node.appliedIndex() >= target));
});

afterAll(async () => {
  await Promise.all(members.map((m) => m.stop()));
});

describe('POST /v1/snapshot', () => {
  it('takes a snapshot on that member and compacts its log; other methods are refused', async () => {
    const m = members[1]!;
    const r = await fetch(`${m.server.url()}/v1/snapshot`, { method: 'POST' });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { name: string; index: number; term: number };
    expect(body.name).toBe('n2');
    expect(body.index).toBe(m.node.snapshotStatus().index);
    expect(body.index).toBeGreaterThanOrEqual(10);
    expect(m.node.status().commit).toBeGreaterThanOrEqual(body.index);
    const metrics = await (await fetch(`${m.server.url()}/metrics`)).text();
    expect(metrics).toContain(`tsraft_snapshot_index ${body.index}`);
    expect(metrics).toContain('tsraft_snapshots_taken_total 1');
    const get = await fetch(`${m.server.url()}/v1/snapshot`);
    expect(get.status).toBe(405);
    expect(((await get.json()) as { error: { code: string } }).error.code).toBe('METHOD_NOT_ALLOWED');
  });

  it('tsraft snapshot asks every endpoint and prints one line each; a dead endpoint fails the command', async () => {
    let out = '';
    let err = '';
    const io = {
      stdout: { write: (s: string | Uint8Array): boolean => ((out += String(s)), true) },
      stderr: { write: (s: string | Uint8Array): boolean => ((err += String(s)), true) },
    };
    const endpoints = members.map((m) => m.server.url()).join(',');
    expect(await main(['snapshot', '--endpoints', endpoints], io as never)).toBe(0);
    expect(out.trim().split('\n')).toHaveLength(3);
    for (const n of names) expect(out).toMatch(new RegExp(`^${n}\\tsnapshot at index \\d+`, 'm'));
    out = '';
    expect(
      await main(
        ['snapshot', '--json', '--timeout', '1500', '--endpoints', `${endpoints},http://127.0.0.1:9`],
        io as never,
      ),
    ).toBe(1);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name?: string; error?: string });
    expect(lines.map((l) => l.name ?? 'error')).toEqual(['n1', 'n2', 'n3', 'error']);
    expect(err).toBe('');
  });
});

describe('serve flags', () => {
  it('--snapshot-count, --snapshot-bytes and --snapshot-catchup-entries reach the config', () => {
    const { config } = parseServeArgs([
      '--name',
      'a',
      '--snapshot-count',
      '500',
      '--snapshot-bytes',
      '0',
      '--snapshot-catchup-entries',
      '50',
    ]);
    expect(config).toMatchObject({ snapshotCount: 500, snapshotBytes: 0, snapshotCatchUpEntries: 50 });
    expect(() => parseServeArgs(['--snapshot-count', '-1'])).toThrow(/snapshot-count/);
  });
});
