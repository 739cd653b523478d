import { afterEach, describe, expect, it } from 'vitest';
import {
  KvClient,
  KvClientError,
  PreconditionFailedError,
  isKvClientError,
} from '../../../src/client/index.js';
import { isRaftError } from '../../../src/errors.js';
import { FakeKv, FakeServer, json, noLeader, refusedUrl, type Handler } from './fake-server.js';
import { TEST_CERT, TEST_KEY } from './tls-fixture.js';

const servers: FakeServer[] = [];
const clients: KvClient[] = [];

async function server(handler?: Handler): Promise<FakeServer> {
  const s = await FakeServer.start(handler);
  servers.push(s);
  return s;
}

async function kvServer(): Promise<{ s: FakeServer; kv: FakeKv }> {
  const kv = new FakeKv();
  const s = await server(kv.handler);
  return { s, kv };
}

function client(o: ConstructorParameters<typeof KvClient>[0]): KvClient {
  const c = new KvClient(o);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString();

describe('KvClient: the kv API', () => {
  it('puts, gets, lists and deletes', async () => {
    const { s } = await kvServer();
    const kv = client({ endpoints: [s.url] });
    const a = await kv.put('a', 'one');
    const b = await kv.put('b', new Uint8Array([0xff, 0x00, 0x01]));
    expect(a.index).toBe(1);
    expect(b.index).toBe(2);
    const got = await kv.get('a');
    expect(text(got?.value)).toBe('one');
    expect(got).toMatchObject({ modIndex: 1, createIndex: 1, raftIndex: 2 });
    expect(await kv.getString('a')).toBe('one');
    await kv.put('a', 'uno');
    expect(await kv.get('a', { consistency: 'stale' })).toMatchObject({ modIndex: 3, createIndex: 1 });
    const items = await kv.list('', { limit: 10 });
    expect(items.map((i) => [i.key, Buffer.from(i.value).toString('hex'), i.modIndex])).toEqual([
      ['a', Buffer.from('uno').toString('hex'), 3],
      ['b', 'ff0001', 2],
    ]);
    expect(await kv.delete('a')).toEqual({ deleted: true, index: 4 });
    expect(await kv.get('a')).toBeUndefined();
    expect(await kv.getString('a')).toBeUndefined();
    const puts = s.requests.filter((r) => r.method === 'PUT');
    expect(puts[0]!.headers['content-type']).toBe('application/octet-stream');
    const stale = s.requests.find((r) => r.query.get('consistency') === 'stale');
    expect(stale).toBeDefined();
    const list = s.requests.find((r) => r.path === '/v1/kv')!;
    expect(list.query.get('limit')).toBe('10');
  });

  it('gives every write its client id and the next sequence number', async () => {
    const { s } = await kvServer();
    const kv = client({ endpoints: [s.url], clientId: 'me' });
    await kv.put('k', 'v');
    await kv.delete('k');
    await kv.delete('k');
    await kv.get('k');
    const writes = s.requests.filter((r) => r.method !== 'GET');
    expect(writes.map((w) => [w.headers['x-client-id'], w.headers['x-request-seq']])).toEqual([
      ['me', '1'],
      ['me', '2'],
      ['me', '3'],
    ]);
    const read = s.requests.find((r) => r.method === 'GET')!;
    expect(read.headers['x-client-id']).toBeUndefined();
  });

  it('defaults the client id to a random UUID', () => {
    const a = client({ endpoints: ['http://127.0.0.1:1'] });
    const b = client({ endpoints: ['http://127.0.0.1:1'] });
    expect(a.clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.clientId).not.toBe(b.clientId);
  });

  it('answers undefined for a missing key and { deleted: false } for deleting one', async () => {
    const { s } = await kvServer();
    const kv = client({ endpoints: [s.url] });
    expect(await kv.get('nope')).toBeUndefined();
    expect(await kv.delete('nope')).toEqual({ deleted: false });
    expect(s.requests).toHaveLength(2);
  });

  it('raises PreconditionFailedError carrying the current modIndex on 412', async () => {
    const { s } = await kvServer();
    const kv = client({ endpoints: [s.url] });
    const { index } = await kv.cas('k', 'v1', 0);
    expect(index).toBe(1);
    const e = await kv.cas('k', 'v2', 0).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PreconditionFailedError);
    expect(e).toBeInstanceOf(KvClientError);
    expect(e).toMatchObject({ code: 'PRECONDITION_FAILED', status: 412, modIndex: 1, key: 'k' });
    const d = await kv.delete('k', { prevIndex: 7 }).catch((x: unknown) => x);
    expect(d).toMatchObject({ code: 'PRECONDITION_FAILED', modIndex: 1 });
    expect(await kv.cas('k', 'v3', 1)).toEqual({ index: 4 });
    expect(
      s.requests.filter((r) => r.query.get('prevIndex') !== null).map((r) => r.query.get('prevIndex')),
    ).toEqual(['0', '0', '7', '1']);
    // Each of those was a new write with its own seq: the refused ones consumed theirs.
    expect(s.requests.map((r) => r.headers['x-request-seq'])).toEqual(['1', '2', '3', '4']);
  });

  it('sends the bearer token', async () => {
    const { s, kv: fake } = await kvServer();
    fake.token = 's3cret';
    const kv = client({ endpoints: [s.url], token: 's3cret' });
    await kv.put('k', 'v');
    expect(text((await kv.get('k'))?.value)).toBe('v');
    expect(s.seen.every((r) => r.headers.authorization === 'Bearer s3cret')).toBe(true);
    const anon = client({ endpoints: [s.url] });
    const e = await anon.get('k').catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
  });

  it('encodes the whole key as one path segment', async () => {
    const { s, kv: fake } = await kvServer();
    const kv = client({ endpoints: [s.url] });
    const keys = ['a/b/c', 'with space', 'ünï€ode/😀', 'q?x=1#frag', '100%', '/lead', 'a/../b', '+&='];
    for (const k of keys) await kv.put(k, k);
    expect([...fake.data.keys()]).toEqual(keys);
    for (const k of keys) expect(await kv.getString(k)).toBe(k);
    const raw = s.requests.filter((r) => r.method === 'PUT').map((r) => r.url);
    expect(raw[0]).toBe('/v1/kv/a%2Fb%2Fc');
    expect(raw[1]).toBe('/v1/kv/with%20space');
    expect(raw[2]).toBe('/v1/kv/%C3%BCn%C3%AF%E2%82%ACode%2F%F0%9F%98%80');
    expect(raw[3]).toBe('/v1/kv/q%3Fx%3D1%23frag');
    expect(raw[6]).toBe('/v1/kv/a%2F..%2Fb');
  });

  it('refuses keys a URL cannot carry, without sending anything', async () => {
    const { s } = await kvServer();
    const kv = client({ endpoints: [s.url] });
    for (const k of ['', '.', '..', 'bad\ud800']) {
      await expect(kv.put(k, 'v')).rejects.toMatchObject({ code: 'BAD_KEY' });
    }
    await expect(kv.put('k', 'v', { prevIndex: -1 })).rejects.toMatchObject({ code: 'BAD_PARAM' });
    expect(s.requests).toHaveLength(0);
    // Nothing sent, no seq consumed.
    await kv.put('k', 'v');
    expect(s.requests[0]!.headers['x-request-seq']).toBe('1');
  });

  it('reads cluster status and health', async () => {
    const { s, kv: fake } = await kvServer();
    fake.cluster = {
      name: 'n1',
      leader: 'n1',
      term: 3,
      commitIndex: 9,
      appliedIndex: 9,
      members: [
        { name: 'n1', peerUrl: 'http://127.0.0.1:2380', clientUrl: s.url, role: 'voter', matchIndex: 9 },
      ],
    };
    const kv = client({ endpoints: [s.url] });
    expect(await kv.cluster()).toEqual(fake.cluster);
    expect(await kv.health()).toEqual({
      endpoint: s.url,
      healthy: true,
      leader: 'n1',
      commitIndex: 0,
      appliedIndex: 0,
    });
    const sick = await server((_r, res) =>
      json(res, 503, { healthy: false, leader: null, commitIndex: 3, appliedIndex: 3, reason: 'no leader' }),
    );
    const h = await kv.health({ endpoint: sick.url });
    expect(h).toMatchObject({ endpoint: sick.url, healthy: false, reason: 'no leader' });
    expect(sick.seen).toHaveLength(1);
  });

  it('does not retry a definite refusal (400)', async () => {
    const s = await server((_r, res) => json(res, 400, { error: { code: 'BAD_SESSION', message: 'nope' } }));
    const kv = client({ endpoints: [s.url] });
    await expect(kv.put('k', 'v')).rejects.toMatchObject({
      code: 'BAD_SESSION',
      status: 400,
      message: 'nope',
    });
    expect(s.seen.filter((r) => r.method === 'PUT')).toHaveLength(1);
  });

  it('validates its options with ConfigError', () => {
    expect(() => new KvClient({ endpoints: [] })).toThrow(/at least one/);
    expect(() => new KvClient({ endpoints: ['ftp://x'] })).toThrow(/http/);
    expect(() => new KvClient({ endpoints: ['http://x'], timeoutMs: 0 })).toThrow(/timeoutMs/);
    try {
      new KvClient({ endpoints: ['nope'] });
    } catch (e) {
      expect(isRaftError(e, 'CONFIG_INVALID')).toBe(true);
    }
  });

  it('talks https to a server whose certificate the given CA signed, and refuses it otherwise', async () => {
    const kv = new FakeKv();
    const s = await FakeServer.start(kv.handler, { cert: TEST_CERT, key: TEST_KEY });
    servers.push(s);
    expect(s.url).toMatch(/^https:/);
    const trusted = client({ endpoints: [s.url], ca: TEST_CERT });
    await trusted.put('k', 'secure');
    expect(await trusted.getString('k')).toBe('secure');
    const untrusted = client({ endpoints: [s.url], deadlineMs: 200 });
    const e = await untrusted.put('k', 'x').catch((x: unknown) => x);
    // The handshake failed, so the request was never sent: UNAVAILABLE, not TIMEOUT.
    expect(e).toMatchObject({ code: 'UNAVAILABLE' });
    expect((e as Error).message).toMatch(/SELF_SIGNED|self.signed/i);
    expect(s.requests).toHaveLength(2);
  });

  it('fails calls with CLOSED once closed', async () => {
    const { s } = await kvServer();
    const kv = client({ endpoints: [s.url] });
    kv.close();
    await expect(kv.put('k', 'v')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(kv.get('k')).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('KvClient: failover and leader discovery', () => {
  it('moves on from a follower answering 503 to the leader, and stays there', async () => {
    const { s: leader } = await kvServer();
    const follower = await server((r, res) =>
      r.path === '/v1/cluster'
        ? json(res, 200, { leader: null, term: 1, commitIndex: 0, appliedIndex: 0, members: [] })
        : noLeader(res),
    );
    const kv = client({ endpoints: [follower.url, leader.url], clientId: 'c' });
    expect(await kv.put('k', 'v')).toEqual({ index: 1 });
    expect(follower.requests.map((r) => [r.method, r.headers['x-request-seq']])).toEqual([['PUT', '1']]);
    expect(leader.requests.map((r) => [r.method, r.headers['x-request-seq']])).toEqual([['PUT', '1']]);
    // The endpoint that answered is tried first from now on.
    await kv.put('k2', 'v');
    expect(await kv.getString('k2')).toBe('v');
    expect(follower.requests).toHaveLength(1);
  });

  it('sends writes straight to the leader named by /v1/cluster', async () => {
    const { s: leader } = await kvServer();
    const follower = await server((r, res) =>
      r.path === '/v1/cluster'
        ? json(res, 200, {
            leader: 'n2',
            term: 4,
            commitIndex: 0,
            appliedIndex: 0,
            members: [
              { name: 'n1', peerUrl: null, clientUrl: 'http://127.0.0.1:1', role: 'voter' },
              { name: 'n2', peerUrl: null, clientUrl: leader.url + '/', role: 'voter' },
            ],
          })
        : noLeader(res),
    );
    const kv = client({ endpoints: [follower.url] });
    await kv.put('a', '1');
    await kv.put('b', '2');
    expect(await kv.getString('a')).toBe('1');
    expect(follower.requests).toHaveLength(0);
    expect(follower.seen.filter((r) => r.path === '/v1/cluster')).toHaveLength(1);
    expect(leader.requests.map((r) => r.method)).toEqual(['PUT', 'PUT', 'GET']);
  });

  it('asks the leader for cluster status when a follower answers first', async () => {
    const members = (leaderUrl: string): unknown[] => [
      { name: 'f', peerUrl: null, clientUrl: 'http://127.0.0.1:1', role: 'voter' },
      { name: 'l', peerUrl: null, clientUrl: leaderUrl, role: 'voter', matchIndex: 8 },
    ];
    const leader = await server((_r, res) =>
      json(res, 200, {
        name: 'l',
        leader: 'l',
        term: 2,
        commitIndex: 8,
        appliedIndex: 8,
        members: members(leader.url),
      }),
    );
    const follower = await server((_r, res) =>
      json(res, 200, {
        name: 'f',
        leader: 'l',
        term: 2,
        commitIndex: 7,
        appliedIndex: 7,
        members: members(leader.url),
      }),
    );
    const kv = client({ endpoints: [follower.url] });
    expect(await kv.cluster()).toMatchObject({ name: 'l', commitIndex: 8 });
    expect(follower.seen).toHaveLength(1);
    // Now the leader is known: asked directly.
    expect(await kv.cluster()).toMatchObject({ name: 'l' });
    expect(follower.seen).toHaveLength(1);
    expect(leader.seen).toHaveLength(2);
  });

  it('fails over when the first endpoint refuses connections', async () => {
    const dead = await refusedUrl();
    const { s } = await kvServer();
    const kv = client({ endpoints: [dead, s.url] });
    const t0 = performance.now();
    await kv.put('k', 'v');
    expect(await kv.getString('k')).toBe('v');
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('forgets a leader that stopped answering and finds the new one', async () => {
    const { s: a } = await kvServer();
    const { s: b, kv: fakeB } = await kvServer();
    let leaderUrl = a.url;
    const clusterOf = (): unknown => ({
      leader: leaderUrl === a.url ? 'a' : 'b',
      term: 1,
      commitIndex: 0,
      appliedIndex: 0,
      members: [
        { name: 'a', peerUrl: null, clientUrl: a.url, role: 'voter' },
        { name: 'b', peerUrl: null, clientUrl: b.url, role: 'voter' },
      ],
    });
    const fakeA = new FakeKv();
    a.handler = (r, res) => (r.path === '/v1/cluster' ? json(res, 200, clusterOf()) : fakeA.handler(r, res));
    b.handler = (r, res) => (r.path === '/v1/cluster' ? json(res, 200, clusterOf()) : fakeB.handler(r, res));
    const kv = client({ endpoints: [b.url, a.url], clientId: 'c' });
    await kv.put('k', '1');
    expect(a.requests).toHaveLength(1);
    expect(b.requests).toHaveLength(0);
    // a loses leadership: it now refuses writes, and everyone names b.
    leaderUrl = b.url;
    a.handler = (r, res) => (r.path === '/v1/cluster' ? json(res, 200, clusterOf()) : noLeader(res));
    await kv.put('k', '2');
    expect(b.requests.map((r) => [r.method, r.headers['x-request-seq']])).toEqual([['PUT', '2']]);
    expect(await kv.getString('k')).toBe('2');
  });

  it('gives up with UNAVAILABLE when nothing is reachable', async () => {
    const kv = client({ endpoints: [await refusedUrl(), await refusedUrl()], deadlineMs: 300 });
    const e = await kv.put('k', 'v').catch((x: unknown) => x);
    expect(isKvClientError(e, 'UNAVAILABLE')).toBe(true);
    expect((e as Error).message).toMatch(/ECONNREFUSED.*gave up after \d+ attempts/);
  });

  it('gives up with the server code when every node keeps answering 503', async () => {
    const s = await server((_r, res) => noLeader(res));
    const kv = client({ endpoints: [s.url], deadlineMs: 300 });
    await expect(kv.put('k', 'v')).rejects.toMatchObject({ code: 'NO_LEADER', status: 503 });
    expect(s.requests.length).toBeGreaterThan(2);
    expect(new Set(s.requests.map((r) => r.headers['x-request-seq']))).toEqual(new Set(['1']));
  });
});

describe('KvClient: exactly-once retries', () => {
  it('resends the same X-Request-Seq after a timed-out attempt', async () => {
    const { s, kv: fake } = await kvServer();
    let hung = false;
    s.handler = (r, res) => {
      if (r.method === 'PUT' && !hung) {
        hung = true;
        // Apply it but never answer: the client cannot tell whether it was applied.
        fake.handler(r, { writeHead: () => undefined, end: () => undefined } as never);
        return;
      }
      return fake.handler(r, res);
    };
    const kv = client({ endpoints: [s.url], timeoutMs: 150, clientId: 'retry-me' });
    const r = await kv.put('k', 'v');
    const puts = s.requests.filter((x) => x.method === 'PUT');
    expect(puts).toHaveLength(2);
    expect(puts.map((p) => [p.headers['x-client-id'], p.headers['x-request-seq']])).toEqual([
      ['retry-me', '1'],
      ['retry-me', '1'],
    ]);
    // The server deduplicated: applied once, the retry got the first result.
    expect(r).toEqual({ index: 1 });
    expect(fake.index).toBe(1);
    await kv.put('k', 'w');
    expect(s.requests.at(-1)!.headers['x-request-seq']).toBe('2');
  });

  it('resends the same seq after a 504 and after a broken connection', async () => {
    const { s, kv: fake } = await kvServer();
    const plan = ['504', 'destroy'];
    s.handler = (r, res) => {
      const step = r.method === 'PUT' ? plan.shift() : undefined;
      if (step === '504') return json(res, 504, { error: { code: 'TIMEOUT', message: 'outcome unknown' } });
      if (step === 'destroy') return void res.socket?.destroy();
      return fake.handler(r, res);
    };
    const kv = client({ endpoints: [s.url], clientId: 'c' });
    expect(await kv.put('k', 'v')).toEqual({ index: 1 });
    expect(s.requests.map((r) => r.headers['x-request-seq'])).toEqual(['1', '1', '1']);
  });

  it('reports TIMEOUT, outcome unknown, when no attempt got a definite answer', async () => {
    const s = await server(() => undefined); // never answers
    const kv = client({ endpoints: [s.url], timeoutMs: 100, deadlineMs: 400 });
    const e = await kv.put('k', 'v').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KvClientError);
    expect(e).toMatchObject({ code: 'TIMEOUT' });
    expect((e as Error).message).toMatch(/outcome unknown/);
    expect(new Set(s.requests.map((r) => r.headers['x-request-seq']))).toEqual(new Set(['1']));
  });

  it('serializes concurrent writes of one client, in call order', async () => {
    const { s, kv: fake } = await kvServer();
    let inFlight = 0;
    let maxInFlight = 0;
    s.handler = async (r, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 10));
      inFlight--;
      return fake.handler(r, res);
    };
    const kv = client({ endpoints: [s.url] });
    const results = await Promise.allSettled([
      kv.put('a', '1'),
      kv.cas('a', '2', 99),
      kv.put('b', '3'),
      kv.delete('a'),
    ]);
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(maxInFlight).toBe(1);
    expect(s.requests.map((r) => `${r.method} ${r.url.split('?')[0]} ${r.headers['x-request-seq']}`)).toEqual(
      ['PUT /v1/kv/a 1', 'PUT /v1/kv/a 2', 'PUT /v1/kv/b 3', 'DELETE /v1/kv/a 4'],
    );
  });
});
