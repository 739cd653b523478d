import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKv, type KvServeConfig, type RunningKv } from '../../../src/kv/run.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';

/** §6 over the HTTP API: add a learner, promote it, remove members, transfer leadership. */
const net = new MemoryNetwork();
const founders = ['n1', 'n2', 'n3'];
const initialCluster = new Map(founders.map((n, i) => [n, `http://127.0.0.1:${3380 + i}`]));
const running = new Map<string, RunningKv>();

function config(name: string, state: 'new' | 'existing'): KvServeConfig {
  return {
    name,
    dataDir: 'unused',
    listenPeerUrl: 'http://127.0.0.1:0',
    listenClientUrl: 'http://127.0.0.1:0',
    initialCluster:
      state === 'new' ? initialCluster : new Map([...initialCluster, [name, 'http://127.0.0.1:3399']]),
    initialClusterState: state,
    clusterSecret: 'x',
    storage: new MemoryStorage(),
    transport: net.transport(name),
    tickMs: 5,
    electionTicks: 10,
    heartbeatTicks: 1,
  };
}

async function until<T>(
  f: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const leader = (): RunningKv => [...running.values()].find((m) => m.node.isLeader())!;
const any = (): RunningKv => [...running.values()].find((m) => !m.node.isLeader())!;
const post = (m: RunningKv, path: string, body: unknown): Promise<Response> =>
  fetch(`${m.server.url()}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

interface Cluster {
  leader: string;
  members: { name: string; role: string; peerUrl: string | null; matchIndex?: number }[];
}
const cluster = async (m: RunningKv): Promise<Cluster> =>
  (await (await fetch(`${m.server.url()}/v1/cluster`)).json()) as Cluster;

beforeAll(async () => {
  for (const n of founders) running.set(n, await startKv(config(n, 'new')));
  await until(() => [...running.values()].some((m) => m.node.isLeader()));
  await until(() =>
    [...running.values()].every((m) => founders.every((n) => m.sm.members.get(n)?.clientUrl)),
  );
});
afterAll(async () => {
  await Promise.all([...running.values()].map((m) => m.stop()));
});

describe('membership over HTTP', () => {
  it('adds a new server as a learner (through a follower): it catches up but does not vote', async () => {
    await fetch(`${leader().server.url()}/v1/kv/before`, { method: 'PUT', body: 'x' });
    const r = await post(any(), '/v1/cluster/members', { name: 'n4', peerUrl: 'http://127.0.0.1:3399' });
    expect(r.status).toBe(201);
    expect(await r.json()).toMatchObject({ name: 'n4', role: 'learner' });
    const n4 = await startKv(config('n4', 'existing'));
    running.set('n4', n4);
    await until(() => n4.sm.get('before') !== undefined);
    const c = await cluster(leader());
    expect(c.members.find((m) => m.name === 'n4')).toMatchObject({
      role: 'learner',
      peerUrl: 'http://127.0.0.1:3399',
    });
    expect(n4.node.status().conf.learners).toContain('n4');
  });

  it('refuses to add an existing member (409) and malformed requests (400)', async () => {
    expect(
      (await post(leader(), '/v1/cluster/members', { name: 'n2', peerUrl: 'http://127.0.0.1:1' })).status,
    ).toBe(409);
    expect(
      (await post(leader(), '/v1/cluster/members', { name: 'x y', peerUrl: 'http://127.0.0.1:1' })).status,
    ).toBe(400);
    expect((await post(leader(), '/v1/cluster/members', { name: 'n9', peerUrl: 'not a url' })).status).toBe(
      400,
    );
    const bad = await fetch(`${leader().server.url()}/v1/cluster/members`, { method: 'POST', body: '{oops' });
    expect(bad.status).toBe(400);
    expect(
      (await fetch(`${leader().server.url()}/v1/cluster/members`, { method: 'PUT', body: '{}' })).status,
    ).toBe(405);
  });

  it('refuses to promote a lagging learner with a clear error, then promotes it once caught up', async () => {
    net.isolate('n4');
    const l = leader();
    for (let i = 0; i < 1100; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          fetch(`${l.server.url()}/v1/kv/lag${i + j}`, { method: 'PUT', body: 'x' }),
        ),
      );
    }
    const r = await post(l, '/v1/cluster/members/n4/promote', {});
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: { code: 'LEARNER_LAGGING' } });
    net.heal();
    await until(async () => {
      const x = await post(leader(), '/v1/cluster/members/n4/promote', {});
      return x.status === 200 ? x : undefined;
    });
    expect((await cluster(leader())).members.find((m) => m.name === 'n4')?.role).toBe('voter');
    expect((await post(leader(), '/v1/cluster/members/n4/promote', {})).status).toBe(409);
    expect((await post(leader(), '/v1/cluster/members/n8/promote', {})).status).toBe(404);
  });

  it('transfers leadership to a named voter', async () => {
    const target = founders.find((n) => n !== leader().node.id)!;
    const r = await post(any(), '/v1/cluster/leader', { name: target });
    expect(r.status).toBe(200);
    await until(() => running.get(target)!.node.isLeader());
  });

  it('removes the leader itself: it steps down once the change commits and the rest carry on', async () => {
    const old = leader();
    const r = await fetch(`${old.server.url()}/v1/cluster/members/${old.node.id}`, { method: 'DELETE' });
    expect(r.status).toBe(200);
    const next = await until(() => [...running.values()].find((m) => m !== old && m.node.isLeader()));
    const c = await cluster(next);
    expect(c.members.map((m) => m.name)).not.toContain(old.node.id);
    expect(
      (await fetch(`${next.server.url()}/v1/kv/after-removal`, { method: 'PUT', body: 'y' })).status,
    ).toBe(200);
    // The removed server never disrupts: it cannot campaign and the term stays put.
    const term = next.node.status().term;
    await new Promise((r) => setTimeout(r, 300));
    expect(next.node.status().term).toBe(term);
    expect(old.node.isLeader()).toBe(false);
    expect(
      (await fetch(`${next.server.url()}/v1/cluster/members/${old.node.id}`, { method: 'DELETE' })).status,
    ).toBe(404);
  });
});
