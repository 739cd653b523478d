import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKv, type RunningKv } from '../../../src/kv/run.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';

/**
 * The HTTP API (DESIGN.md "kv") of a three-member cluster running in this process over an
 * in-memory network: every endpoint and every error status.
 */
const names = ['n1', 'n2', 'n3'];
let members: RunningKv[] = [];
let leader: RunningKv;
let follower: RunningKv;
const TOKEN = 's3cret-token';

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
        maxValueBytes: 1024,
      }),
    ),
  );
  leader = await until(() => members.find((m) => m.node.isLeader()));
  follower = members.find((m) => m !== leader)!;
  // Every member publishes its client URL through the log; forwarding needs the leader's.
  await until(() => members.every((m) => names.every((n) => m.sm.members.has(n))));
});

afterAll(async () => {
  await Promise.all(members.map((m) => m.stop()));
});

const url = (m: RunningKv, p: string): string => `${m.server.url()}${p}`;

describe('PUT/GET/DELETE /v1/kv/{key}', () => {
  it('puts a raw value and answers the log index; GET returns the bytes with index headers', async () => {
    const put = await fetch(url(leader, '/v1/kv/greeting'), { method: 'PUT', body: 'hello' });
    expect(put.status).toBe(200);
    const { index } = (await put.json()) as { index: number };
    expect(index).toBeGreaterThan(0);
    const get = await fetch(url(leader, '/v1/kv/greeting'));
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('hello');
    expect(get.headers.get('x-mod-index')).toBe(String(index));
    expect(Number(get.headers.get('x-raft-index'))).toBeGreaterThanOrEqual(index);
  });

  it('a follower forwards writes to the leader and serves linearizable reads after a ReadIndex barrier', async () => {
    const put = await fetch(url(follower, '/v1/kv/via-follower'), { method: 'PUT', body: 'v1' });
    expect(put.status).toBe(200);
    const get = await fetch(url(follower, '/v1/kv/via-follower'));
    expect(await get.text()).toBe('v1');
  });

  it('?format=json gives key, value, modIndex, createIndex; binary values come back base64', async () => {
    await fetch(url(leader, '/v1/kv/bin'), { method: 'PUT', body: new Uint8Array([0xff, 0xfe, 0x00]) });
    const r = (await (await fetch(url(leader, '/v1/kv/bin?format=json'))).json()) as Record<string, unknown>;
    expect(r).toMatchObject({
      key: 'bin',
      value: Buffer.from([0xff, 0xfe, 0]).toString('base64'),
      encoding: 'base64',
    });
    expect(r['modIndex']).toBe(r['createIndex']);
    await fetch(url(leader, '/v1/kv/bin'), { method: 'PUT', body: 'text' });
    const r2 = (await (await fetch(url(leader, '/v1/kv/bin?format=json'))).json()) as Record<string, unknown>;
    expect(r2['value']).toBe('text');
    expect(r2['encoding']).toBeUndefined();
    expect(r2['modIndex']).toBeGreaterThan(r2['createIndex'] as number);
  });

  it('keys are URL path segments: slashes, spaces and unicode survive', async () => {
    const key = 'a/b c/ü';
    await fetch(url(leader, `/v1/kv/${encodeURIComponent(key)}`), { method: 'PUT', body: 'x' });
    const r = (await (await fetch(url(leader, `/v1/kv/${encodeURIComponent(key)}?format=json`))).json()) as {
      key: string;
    };
    expect(r.key).toBe(key);
  });

  it('stale and lease reads are served too; an unknown consistency is 400', async () => {
    await fetch(url(leader, '/v1/kv/c'), { method: 'PUT', body: '1' });
    expect(await (await fetch(url(leader, '/v1/kv/c?consistency=lease'))).text()).toBe('1');
    expect((await fetch(url(leader, '/v1/kv/c?consistency=stale'))).status).toBe(200);
    const bad = await fetch(url(leader, '/v1/kv/c?consistency=eventual'));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'BAD_PARAM' } });
  });

  it('GET and DELETE of a missing key answer 404 with a JSON error', async () => {
    const g = await fetch(url(leader, '/v1/kv/missing'));
    expect(g.status).toBe(404);
    expect(await g.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const d = await fetch(url(leader, '/v1/kv/missing'), { method: 'DELETE' });
    expect(d.status).toBe(404);
  });

  it('DELETE removes a key', async () => {
    await fetch(url(leader, '/v1/kv/gone'), { method: 'PUT', body: 'x' });
    const d = await fetch(url(leader, '/v1/kv/gone'), { method: 'DELETE' });
    expect(d.status).toBe(200);
    expect(await d.json()).toMatchObject({ deleted: true });
    expect((await fetch(url(leader, '/v1/kv/gone'))).status).toBe(404);
  });
});

describe('compare-and-set with prevIndex', () => {
  it('prevIndex=0 creates only if absent; a stale prevIndex answers 412 with the current modIndex', async () => {
    const c1 = await fetch(url(leader, '/v1/kv/cas?prevIndex=0'), { method: 'PUT', body: 'first' });
    expect(c1.status).toBe(200);
    const { index } = (await c1.json()) as { index: number };
    const c2 = await fetch(url(leader, '/v1/kv/cas?prevIndex=0'), { method: 'PUT', body: 'second' });
    expect(c2.status).toBe(412);
    expect(await c2.json()).toMatchObject({ error: { code: 'PRECONDITION_FAILED', modIndex: index } });
    const c3 = await fetch(url(leader, `/v1/kv/cas?prevIndex=${index}`), { method: 'PUT', body: 'third' });
    expect(c3.status).toBe(200);
    expect(await (await fetch(url(leader, '/v1/kv/cas'))).text()).toBe('third');
    const d = await fetch(url(leader, `/v1/kv/cas?prevIndex=${index}`), { method: 'DELETE' });
    expect(d.status).toBe(412);
  });

  it('a malformed prevIndex is 400', async () => {
    const r = await fetch(url(leader, '/v1/kv/cas?prevIndex=-1'), { method: 'PUT', body: 'x' });
    expect(r.status).toBe(400);
  });
});

describe('exactly-once client sessions', () => {
  it('a retried write with the same client id and sequence applies once and returns the first result', async () => {
    const h = { 'x-client-id': 'client-a', 'x-request-seq': '1' };
    const r1 = (await (
      await fetch(url(leader, '/v1/kv/once'), { method: 'PUT', body: 'a', headers: h })
    ).json()) as { index: number };
    // Somebody else changes the key; the retry must not overwrite it.
    await fetch(url(leader, '/v1/kv/once'), { method: 'PUT', body: 'b' });
    const r2 = (await (
      await fetch(url(follower, '/v1/kv/once'), { method: 'PUT', body: 'a', headers: h })
    ).json()) as { index: number };
    expect(r2.index).toBe(r1.index);
    expect(await (await fetch(url(leader, '/v1/kv/once'))).text()).toBe('b');
    // An older sequence than the last applied one is refused.
    await fetch(url(leader, '/v1/kv/once'), {
      method: 'PUT',
      body: 'c',
      headers: { 'x-client-id': 'client-a', 'x-request-seq': '2' },
    });
    const old = await fetch(url(leader, '/v1/kv/once'), { method: 'PUT', body: 'd', headers: h });
    expect(old.status).toBe(409);
  });

  it('a malformed session header is 400', async () => {
    const r = await fetch(url(leader, '/v1/kv/s'), {
      method: 'PUT',
      body: 'x',
      headers: { 'x-client-id': 'c', 'x-request-seq': 'abc' },
    });
    expect(r.status).toBe(400);
  });
});

describe('limits and bad input', () => {
  it('an oversized value is 413 and nothing is written', async () => {
    const r = await fetch(url(leader, '/v1/kv/big'), { method: 'PUT', body: 'x'.repeat(2000) });
    expect(r.status).toBe(413);
    expect((await fetch(url(leader, '/v1/kv/big'))).status).toBe(404);
  });

  it('an oversized key is 413', async () => {
    const r = await fetch(url(leader, `/v1/kv/${'k'.repeat(5000)}`), { method: 'PUT', body: 'x' });
    expect(r.status).toBe(413);
  });

  it('bad percent-encoding is 400; unknown routes 404; wrong methods 405', async () => {
    expect((await fetch(url(leader, '/v1/kv/%E0%A4%A'))).status).toBe(400);
    expect((await fetch(url(leader, '/v2/nothing'))).status).toBe(404);
    expect((await fetch(url(leader, '/v1/kv/x'), { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(url(leader, '/v1/cluster'), { method: 'DELETE' })).status).toBe(405);
  });
});

describe('listing, cluster status, health, metrics', () => {
  it('GET /v1/kv?prefix=&limit= lists matching keys in order', async () => {
    for (const k of ['p/2', 'p/1', 'p/3', 'q/1'])
      await fetch(url(leader, `/v1/kv/${encodeURIComponent(k)}`), { method: 'PUT', body: k });
    const r = (await (await fetch(url(follower, '/v1/kv?prefix=p%2F&limit=2'))).json()) as {
      items: { key: string; value: string }[];
    };
    expect(r.items.map((i) => i.key)).toEqual(['p/1', 'p/2']);
    expect(r.items[0]!.value).toBe('p/1');
    expect((await fetch(url(leader, '/v1/kv?limit=0'))).status).toBe(400);
  });

  it('GET /v1/cluster names the leader, term, indexes and members with roles and URLs', async () => {
    const c = (await (await fetch(url(follower, '/v1/cluster'))).json()) as {
      leader: string;
      term: number;
      commitIndex: number;
      appliedIndex: number;
      members: { name: string; role: string; peerUrl: string; clientUrl: string; matchIndex?: number }[];
    };
    expect(c.leader).toBe(leader.node.id);
    expect(c.term).toBeGreaterThan(0);
    expect(c.members.map((m) => m.name).sort()).toEqual(names);
    expect(c.members.every((m) => m.role === 'voter' && m.clientUrl.startsWith('http://'))).toBe(true);
    const fromLeader = (await (await fetch(url(leader, '/v1/cluster'))).json()) as typeof c;
    expect(fromLeader.members.every((m) => typeof m.matchIndex === 'number')).toBe(true);
  });

  it('GET /health is 200 on a caught-up member with a leader', async () => {
    const r = await fetch(url(follower, '/health'));
    expect(r.status).toBe(200);
  });

  it('GET /metrics is Prometheus text', async () => {
    const t = await (await fetch(url(leader, '/metrics'))).text();
    expect(t).toMatch(/^tsraft_is_leader 1$/m);
    expect(t).toMatch(/^tsraft_commit_index \d+$/m);
  });
});

describe('bearer token', () => {
  let guarded: RunningKv;
  beforeAll(async () => {
    guarded = await startKv({
      name: 'solo',
      dataDir: 'unused',
      listenPeerUrl: 'http://127.0.0.1:0',
      listenClientUrl: 'http://127.0.0.1:0',
      initialCluster: new Map([['solo', 'http://127.0.0.1:1']]),
      initialClusterState: 'new',
      clusterSecret: 'x',
      clientToken: TOKEN,
      storage: new MemoryStorage(),
      transport: new MemoryNetwork().transport('solo'),
      tickMs: 5,
    });
    await until(() => guarded.node.isLeader());
  });
  afterAll(() => guarded.stop());

  it('without or with a wrong token every request is 401 and nothing is written', async () => {
    expect((await fetch(url(guarded, '/v1/kv/t'), { method: 'PUT', body: 'x' })).status).toBe(401);
    const wrong = await fetch(url(guarded, '/v1/kv/t'), {
      method: 'PUT',
      body: 'x',
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
    expect((await fetch(url(guarded, '/health'))).status).toBe(401);
    const ok = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(url(guarded, '/v1/kv/t'), { headers: ok })).status).toBe(404);
    expect((await fetch(url(guarded, '/v1/kv/t'), { method: 'PUT', body: 'x', headers: ok })).status).toBe(
      200,
    );
  });
});
