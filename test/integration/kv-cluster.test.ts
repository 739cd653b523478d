import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, get, put, type Member } from '../support/process-cluster.js';
import { until } from '../support/until.js';

/**
 * Real `tsraft serve` processes on loopback, with their own data directories, under kill -9
 * and restarts (issue 4's integration tests).
 */

describe('three-member cluster of real processes', () => {
  const c = new ProcessCluster(3);
  const acked = new Map<string, string>();

  beforeAll(async () => {
    await c.init();
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(() => c.destroy());

  it('writes and linearizable reads go through any member', async () => {
    for (const [i, m] of c.members.entries()) {
      // Until the leader's client URL is published, a follower may answer 503: retry.
      const r = await until(
        async () => {
          const x = await put(m.clientUrl, `k${i}`, `v${i}`);
          return x.status === 200 ? x : undefined;
        },
        5000,
        `write through ${m.name}`,
      );
      expect(r.body).toMatchObject({ index: expect.any(Number) });
      acked.set(`k${i}`, `v${i}`);
    }
    for (const m of c.members) {
      for (const [k, v] of acked) expect((await get(m.clientUrl, k)).value).toBe(v);
    }
  });

  it('kill -9 of the leader under steady writes: a new leader serves within 2 s and no acknowledged write is lost', async () => {
    const old = await c.waitForLeader();
    let stop = false;
    let seq = 0;
    let firstAckAfterKill = 0;
    let killedAt = Number.POSITIVE_INFINITY;
    const writer = async (w: number): Promise<void> => {
      while (!stop) {
        const live = c.members.filter((m) => m.proc);
        const target = live[(seq + w) % live.length]!;
        const key = `w${w}-${++seq}`;
        const startedAt = Date.now();
        try {
          const r = await put(target.clientUrl, key, key);
          if (r.status === 200) {
            acked.set(key, key);
            // Only a write begun after the kill proves a new leader is serving.
            if (startedAt > killedAt && firstAckAfterKill === 0) firstAckAfterKill = Date.now();
          } else await new Promise((r) => setTimeout(r, 10));
        } catch {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await new Promise((r) => setTimeout(r, 500));
    const before = acked.size;
    await c.kill(old.name);
    killedAt = Date.now();
    await until(async () => firstAckAfterKill > 0, 5000, 'a write begun after the kill acknowledged');
    const recovery = firstAckAfterKill - killedAt;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(writers);
    console.log(
      `leader ${old.name} killed: writes resumed after ${recovery} ms; ${acked.size - before} writes acknowledged around the kill`,
    );
    expect(recovery).toBeLessThan(2000);
    const leader = await c.waitForLeader();
    expect(leader.name).not.toBe(old.name);
    for (const [k, v] of acked) expect((await get(leader.clientUrl, k)).value, k).toBe(v);

    // The killed member restarts from its data directory and catches up.
    c.start(old.name);
    const lastKey = [...acked.keys()].at(-1)!;
    await until(
      async () => (await get(old.clientUrl, lastKey, 'stale')).value === lastKey,
      10_000,
      'restarted member catches up',
    );
    const health = await until(
      async () => {
        const r = await fetch(`${old.clientUrl}/health`);
        return r.status === 200 ? r : undefined;
      },
      10_000,
      'restarted member healthy',
    );
    expect(health.status).toBe(200);
  });

  it('a graceful restart of the whole cluster keeps every acknowledged write', async () => {
    const codes = await Promise.all(c.members.map((m) => c.stop(m.name)));
    expect(codes).toEqual([0, 0, 0]);
    c.startAll();
    const leader = await c.waitForLeader();
    for (const [k, v] of acked) expect((await get(leader.clientUrl, k)).value, k).toBe(v);
  });
});

describe('five-member cluster', () => {
  const c = new ProcessCluster(5);
  beforeAll(async () => {
    await c.init();
    c.startAll();
    await c.waitForLeader();
  });
  afterAll(() => c.destroy());

  it('tolerates two dead members, the leader among them', async () => {
    const leader = await c.waitForLeader();
    const other = c.members.find((m) => m !== leader)!;
    await c.kill(leader.name);
    await c.kill(other.name);
    const alive: Member[] = c.members.filter((m) => m.proc);
    expect(alive).toHaveLength(3);
    const r = await until(
      async () => {
        const x = await put(alive[0]!.clientUrl, 'survivor', 'yes');
        return x.status === 200 ? x : undefined;
      },
      8000,
      'write with two members dead',
    );
    expect(r.status).toBe(200);
    for (const m of alive) expect((await get(m.clientUrl, 'survivor')).value).toBe('yes');
  });
});
