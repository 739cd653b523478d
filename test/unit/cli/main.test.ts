import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main, splitCommand } from '../../../src/cli/main.js';
import { FakeKv, FakeServer, json, noLeader } from '../client/fake-server.js';
import { TEST_CERT, TEST_KEY } from '../client/tls-fixture.js';

interface Run {
  code: number;
  out: string;
  err: string;
  outBytes: Buffer;
}

async function run(...argv: string[]): Promise<Run> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (to: Buffer[]) => ({ write: (c: string | Uint8Array) => to.push(Buffer.from(c)) });
  const code = await main(argv, { stdout: sink(out), stderr: sink(err) });
  const outBytes = Buffer.concat(out);
  return { code, out: outBytes.toString(), err: Buffer.concat(err).toString(), outBytes };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsraft-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function kvServer(): Promise<{ s: FakeServer; kv: FakeKv; ep: string }> {
  const kv = new FakeKv();
  const s = await FakeServer.start(kv.handler);
  servers.push(s);
  return { s, kv, ep: `--endpoints=${s.url}` };
}

describe('tsraft: usage', () => {
  it('--help lists every subcommand and the global flags', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    for (const c of ['serve', 'dev', 'put', 'get', 'del', 'cas', 'ls', 'status', 'members']) {
      expect(r.out).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    }
    for (const f of ['--endpoints', '--token-file', '--ca-file', '--timeout', '--help'])
      expect(r.out).toContain(f);
    expect(r.out).toContain('http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379');
    expect((await run('help')).out).toBe(r.out);
  });

  it('prints one command’s help', async () => {
    const r = await run('get', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: tsraft get <key>');
    expect(r.out).toContain('--consistency');
    expect((await run('help', 'cas')).out).toContain('Usage: tsraft cas <key> <value> --prev-index N');
  });

  it.each([
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['get', 'k', '--bogus'], /Unknown option '--bogus'/],
    [['put', 'k'], /put needs <key> <value>/],
    [['get'], /get needs <key>/],
    [['get', 'a', 'b'], /get takes at most 1 argument/],
    [['status', 'x'], /status takes at most 0 arguments/],
    [['cas', 'k', 'v'], /cas needs --prev-index N/],
    [['del', 'k', '--prev-index', 'abc'], /--prev-index must be a non-negative integer, not "abc"/],
    [['ls', '--limit', '0'], /--limit must be at least 1/],
    [['get', 'k', '--consistency', 'strong'], /--consistency must be linearizable, lease or stale/],
    [['get', 'k', '--timeout', '-5'], /--timeout/],
    [['get', 'k', '--endpoints', 'ftp://x'], /must be an http:\/\/ or https:\/\/ URL/],
    [['get', 'k', '--token-file', '/nonexistent/tsraft-token'], /cannot read --token-file .*ENOENT/],
    [['get', 'k', '--json=yes'], /--json/],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const r = await run(...argv);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^error: /);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/Usage: tsraft/);
  });

  it('finds the command after global flags', () => {
    expect(splitCommand(['--endpoints', 'http://a', '--timeout', '5', 'get', 'k'])).toEqual({
      command: 'get',
      rest: ['--endpoints', 'http://a', '--timeout', '5', 'k'],
    });
    expect(splitCommand(['--endpoints=http://a', 'put', 'k', 'v'])).toEqual({
      command: 'put',
      rest: ['--endpoints=http://a', 'k', 'v'],
    });
    expect(splitCommand(['--help'])).toEqual({ command: undefined, rest: ['--help'] });
    expect(splitCommand(['serve', '--name', 'n1'])).toEqual({ command: 'serve', rest: ['--name', 'n1'] });
  });
});

describe('tsraft: client commands', () => {
  it('put, get, ls, del round trip', async () => {
    const { ep, kv } = await kvServer();
    expect(await run('put', 'dir/a', 'hello world', ep)).toMatchObject({
      code: 0,
      out: 'OK index=1\n',
      err: '',
    });
    expect(await run(ep, 'put', 'dir/b', '--', '-5')).toMatchObject({ code: 0, out: 'OK index=2\n' });
    expect(kv.data.get('dir/b')?.value.toString()).toBe('-5');
    expect(await run('get', 'dir/a', ep)).toMatchObject({ code: 0, out: 'hello world\n' });
    const j = await run('get', 'dir/a', '--json', '--consistency', 'lease', ep);
    expect(JSON.parse(j.out)).toEqual({
      key: 'dir/a',
      value: 'hello world',
      modIndex: 1,
      createIndex: 1,
      raftIndex: 2,
    });
    expect((await run('ls', 'dir/', ep)).out).toBe('dir/a\thello world\ndir/b\t-5\n');
    expect((await run('ls', 'dir/', '--limit', '1', ep)).out).toBe('dir/a\thello world\n');
    const lj = JSON.parse((await run('ls', '--json', ep)).out) as unknown[];
    expect(lj).toHaveLength(2);
    expect(await run('del', 'dir/a', ep)).toMatchObject({ code: 0, out: 'OK index=3\n' });
    expect(await run('get', 'dir/a', ep)).toMatchObject({
      code: 1,
      out: '',
      err: 'error: NOT_FOUND no key "dir/a"\n',
    });
    expect(await run('del', 'dir/a', ep)).toMatchObject({
      code: 1,
      err: 'error: NOT_FOUND no key "dir/a"\n',
    });
    expect(await run('del', 'dir/a', '--json', ep)).toMatchObject({ code: 1, out: '{"deleted":false}\n' });
  });

  it('get writes binary values byte for byte', async () => {
    const { ep, kv } = await kvServer();
    kv.data.set('bin', { value: Buffer.from([0, 0xff, 0x80, 0x0a]), modIndex: 5, createIndex: 5 });
    const r = await run('get', 'bin', ep);
    expect(r.outBytes).toEqual(Buffer.from([0, 0xff, 0x80, 0x0a, 0x0a]));
    const j = JSON.parse((await run('get', 'bin', '--json', ep)).out) as { value: string; encoding: string };
    expect(j).toMatchObject({
      value: Buffer.from([0, 0xff, 0x80, 0x0a]).toString('base64'),
      encoding: 'base64',
    });
  });

  it('cas reports PRECONDITION_FAILED with exit 1', async () => {
    const { ep } = await kvServer();
    expect(await run('cas', 'k', 'v1', '--prev-index', '0', ep)).toMatchObject({
      code: 0,
      out: 'OK index=1\n',
    });
    const r = await run('cas', 'k', 'v2', '--prev-index', '0', ep);
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: PRECONDITION_FAILED precondition failed on "k": its modIndex is 1\n');
    expect(await run('cas', 'k', 'v2', '--prev-index=1', '--json', ep)).toMatchObject({
      code: 0,
      out: '{"index":3}\n',
    });
    expect((await run('del', 'k', '--prev-index', '1', ep)).err).toMatch(
      /^error: PRECONDITION_FAILED .*modIndex is 3/,
    );
  });

  it('status pretty-prints /v1/cluster', async () => {
    const { ep, kv, s } = await kvServer();
    kv.cluster = {
      name: 'n2',
      leader: 'n1',
      term: 7,
      commitIndex: 42,
      appliedIndex: 41,
      members: [
        { name: 'n1', peerUrl: 'http://127.0.0.1:2380', clientUrl: s.url, role: 'voter', matchIndex: 42 },
        { name: 'n2', peerUrl: 'http://127.0.0.1:22380', clientUrl: null, role: 'learner' },
      ],
    };
    const r = await run('status', ep);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      'leader n1  term 7  commit 42  applied 41  (as seen by n2)',
      `NAME  ROLE     LEADER  MATCH  CLIENT URL${' '.repeat(s.url.length - 10)}  PEER URL`,
      `n1    voter    *       42     ${s.url}  http://127.0.0.1:2380`,
      `n2    learner          -      -${' '.repeat(s.url.length - 1)}  http://127.0.0.1:22380`,
      '',
    ]);
    expect(JSON.parse((await run('status', '--json', ep)).out)).toEqual(kv.cluster);
  });

  it('sends the token from --token-file and trusts --ca-file', async () => {
    const { ep, kv, s } = await kvServer();
    kv.token = 'tok';
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'tok\n');
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, 'not used for http');
    expect(await run('put', 'k', 'v', ep, '--token-file', tokenFile, '--ca-file', caFile)).toMatchObject({
      code: 0,
    });
    expect(s.seen.at(-1)!.headers.authorization).toBe('Bearer tok');
    expect(await run('get', 'k', ep)).toMatchObject({
      code: 1,
      err: 'error: UNAUTHORIZED a valid bearer token is required\n',
    });
  });

  it('trusts the CA from --ca-file for https endpoints', async () => {
    const kv = new FakeKv();
    const s = await FakeServer.start(kv.handler, { cert: TEST_CERT, key: TEST_KEY });
    servers.push(s);
    const caFile = join(dir, 'test-ca.pem');
    await writeFile(caFile, TEST_CERT);
    expect(await run('put', 'k', 'v', '--endpoints', s.url, '--ca-file', caFile)).toMatchObject({ code: 0 });
    expect(await run('get', 'k', '--endpoints', s.url, '--ca-file', caFile)).toMatchObject({
      code: 0,
      out: 'v\n',
    });
    const r = await run('get', 'k', '--endpoints', s.url, '--timeout', '200');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: UNAVAILABLE /);
  });

  it('fails over between --endpoints and reports a server error after --timeout', async () => {
    const { s: good } = await kvServer();
    const follower = await FakeServer.start((r, res) =>
      r.path === '/v1/cluster'
        ? json(res, 200, { leader: null, term: 1, commitIndex: 0, appliedIndex: 0, members: [] })
        : noLeader(res),
    );
    servers.push(follower);
    expect(await run('put', 'k', 'v', '--endpoints', `${follower.url},${good.url}`)).toMatchObject({
      code: 0,
    });
    const t0 = performance.now();
    const r = await run('put', 'k', 'v', '--endpoints', follower.url, '--timeout', '300');
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^error: NO_LEADER no leader is known; retry shortly \(gave up after \d+ attempts in \d+ ms\)\n$/,
    );
  });

  it('members needs a subcommand; an unknown one is a usage error', async () => {
    const r = await run('members');
    expect(r.code).toBe(2);
    const u = await run('members', 'frobnicate', 'x');
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/unknown members subcommand/);
  });
});
