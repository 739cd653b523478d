import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ProcessCluster, get, put } from '../support/process-cluster.js';
import { until } from '../support/until.js';

/**
 * Growing and shrinking a live cluster of real processes with the CLI (§6): a new server
 * joins as a learner with `serve --initial-cluster-state existing`, is promoted, and an old
 * member (the leader) is removed, while writes keep succeeding.
 */
function capture(): {
  io: {
    stdout: { write(s: string | Uint8Array): boolean };
    stderr: { write(s: string | Uint8Array): boolean };
  };
  out: () => string;
  err: () => string;
} {
  let o = '';
  let e = '';
  const w = (f: (s: string) => void) => ({
    write: (s: string | Uint8Array): boolean => (
      f(typeof s === 'string' ? s : Buffer.from(s).toString()),
      true
    ),
  });
  return { io: { stdout: w((s) => (o += s)), stderr: w((s) => (e += s)) }, out: () => o, err: () => e };
}

describe('membership change on a live cluster of real processes', () => {
  const c = new ProcessCluster(4, [], 3);
  const endpoints = (): string =>
    c.members
      .filter((m) => m.proc)
      .map((m) => m.clientUrl)
      .join(',');
  const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const cap = capture();
    const code = await main([...args, '--endpoints', endpoints()], cap.io as never);
    return { code, out: cap.out(), err: cap.err() };
  };

  beforeAll(async () => {
    await c.init();
    c.startAll();
    await c.waitForLeader();
    const l = await c.waitForLeader();
    await until(async () => (await put(l.clientUrl, 'seed', 'v')).status === 200, 5000, 'first write');
  });
  afterAll(() => c.destroy());

  it('adds n4 as a learner, starts it with --initial-cluster-state existing, and it catches up', async () => {
    const n4 = c.member('n4');
    const r = await cli('members', 'add', 'n4', '--peer-url', n4.peerUrl, '--client-url', n4.clientUrl);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('n4 added as learner');
    c.start('n4');
    await until(
      async () => (await get(n4.clientUrl, 'seed', 'stale')).value === 'v',
      10_000,
      'n4 catches up',
    );
    const list = await cli('members', 'list', '--json');
    const st = JSON.parse(list.out) as { members: { name: string; role: string }[] };
    expect(st.members.find((m) => m.name === 'n4')?.role).toBe('learner');
  });

  it('promotes the caught-up learner and removes the old leader; writes keep working', async () => {
    const p = await cli('members', 'promote', 'n4');
    expect(p.code, p.err).toBe(0);
    const old = await c.waitForLeader();
    const rm = await cli('members', 'remove', old.name);
    expect(rm.code, rm.err).toBe(0);
    const next = await until(
      async () => {
        const l = await c.leader();
        return l && l.name !== old.name ? l : undefined;
      },
      10_000,
      'a new leader',
    );
    await c.kill(old.name);
    const w = await until(
      async () => {
        const x = await put(next.clientUrl, 'after', 'yes');
        return x.status === 200 ? x : undefined;
      },
      10_000,
      'a write after the removal',
    );
    expect(w.status).toBe(200);
    const st = JSON.parse((await cli('status', '--json')).out) as {
      members: { name: string; role: string }[];
    };
    expect(st.members.map((m) => `${m.name}:${m.role}`).sort()).toEqual(
      ['n1', 'n2', 'n3', 'n4'].filter((n) => n !== old.name).map((n) => `${n}:voter`),
    );
    const n4 = c.member('n4');
    const got = await get(n4.clientUrl, 'after').catch(async (e: Error) => {
      const view = await fetch(`${n4.clientUrl}/v1/cluster`).then(
        (r) => r.text(),
        (x: Error) => x.message,
      );
      throw new Error(
        `linearizable read on n4 failed (${e.message}); n4 sees ${view}; n4 log:\n${n4.log
          .filter((l) => l.includes('n1'))
          .slice(-15)
          .join('\n')}`,
      );
    });
    expect(got.value).toBe('yes');
  });

  it('bad usage exits 2 with a usage message; promoting a non-member fails with NO_MEMBER', async () => {
    const bad = await cli('members', 'frobnicate', 'x');
    expect(bad.code).toBe(2);
    const missing = await cli('members', 'add', 'n9');
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('--peer-url');
    const noSuch = await cli('members', 'promote', 'n9');
    expect(noSuch.code).toBe(1);
    expect(noSuch.err).toContain('NO_MEMBER');
  });
});
