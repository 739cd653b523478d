import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeChallenge, encodeHello, newNonce } from '../../src/transport/handshake.js';
import { NetworkProxy } from './proxy.js';
import { Rng } from './rng.js';

/** The fault suite's network: what a cut, a delay, a reset and sender identification do. */

const servers: net.Server[] = [];
const proxies: NetworkProxy[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** An echo server; `greeting` is sent first on every connection (as a tsraft peer sends CHALLENGE). */
async function echo(greeting?: Buffer): Promise<number> {
  const s = net.createServer((c) => {
    c.on('error', () => undefined);
    if (greeting) c.write(greeting);
    c.pipe(c);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as net.AddressInfo).port;
}

function proxy(): NetworkProxy {
  const p = new NetworkProxy(new Rng(1));
  proxies.push(p);
  return p;
}

/** Connects, writes `msg`, resolves with what came back within `ms` (or the error). */
function roundTrip(
  port: number,
  msg: Buffer,
  ms = 500,
): Promise<{ data: Buffer; closed: boolean; at: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    c.on('error', () => undefined);
    c.on('data', (b) => chunks.push(b));
    c.on('close', () => (closed = true));
    c.write(msg);
    setTimeout(() => {
      c.destroy();
      resolve({ data: Buffer.concat(chunks), closed, at: performance.now() - t0 });
    }, ms);
  });
}

/** A real HELLO frame, as the transport's handshake writes it. */
function hello(id: string): Buffer {
  return encodeHello(Buffer.from('secret'), newNonce(), newNonce(), id);
}

describe('the fault network proxy', () => {
  it('forwards, and a blocked link refuses new connections and cuts existing ones', async () => {
    const p = proxy();
    const port = await p.listenPair('a', 'b', await echo());
    expect((await roundTrip(port, Buffer.from('hi'), 100)).data.toString()).toBe('hi');
    const live = net.connect(port, '127.0.0.1');
    live.on('error', () => undefined);
    const closed = new Promise((r) => live.once('close', r));
    await new Promise((r) => live.once('connect', r));
    p.setLink('a', 'b', { blocked: true });
    await closed;
    const r = await roundTrip(port, Buffer.from('hi'), 100);
    expect(r.data.length).toBe(0);
    expect(r.closed).toBe(true);
    // The other direction is another link: untouched.
    const back = await p.listenPair('b', 'a', await echo());
    expect((await roundTrip(back, Buffer.from('ok'), 100)).data.toString()).toBe('ok');
    p.heal();
    expect((await roundTrip(port, Buffer.from('again'), 100)).data.toString()).toBe('again');
  });

  it('black-holes new connections when told to, until healed', async () => {
    const p = proxy();
    const port = await p.listenPair('a', 'b', await echo());
    p.blockMode = 'blackhole';
    p.partition([['a'], ['b']]);
    const r = await roundTrip(port, Buffer.from('hi'), 200);
    expect(r.data.length).toBe(0);
    expect(r.closed).toBe(false);
    expect(p.stats.held).toBe(1);
  });

  it('delays chunks in order', async () => {
    const p = proxy();
    const port = await p.listenPair('a', 'b', await echo());
    p.setLink('a', 'b', { delayMs: 150 });
    const c = net.connect(port, '127.0.0.1');
    const t0 = performance.now();
    const got: string[] = [];
    const first = new Promise<number>((r) => c.once('data', () => r(performance.now() - t0)));
    c.on('data', (b) => got.push(b.toString()));
    c.write('1');
    setTimeout(() => c.write('2'), 10);
    setTimeout(() => c.write('3'), 20);
    // There and back: two delays.
    expect(await first).toBeGreaterThanOrEqual(290);
    await new Promise((r) => setTimeout(r, 150));
    expect(got.join('')).toBe('123');
    c.destroy();
  });

  it('resets connections on a lossy link', async () => {
    const p = proxy();
    const port = await p.listenPair('a', 'b', await echo());
    p.setLink('a', 'b', { resetProbability: 1 });
    const r = await roundTrip(port, Buffer.from('hi'), 100);
    expect(r.closed).toBe(true);
    expect(p.stats.resets).toBe(1);
  });

  it('tells the sender of a shared peer address from its HELLO, after relaying the CHALLENGE', async () => {
    const p = proxy();
    const challenge = encodeChallenge(newNonce());
    const port = await p.listenInbound('b', await echo(challenge));
    p.setLink('c', 'b', { blocked: true });
    const h = hello('a');
    const fromA = await roundTrip(port, h, 150);
    expect(fromA.data.subarray(0, challenge.length)).toEqual(challenge);
    expect(fromA.data.subarray(challenge.length)).toEqual(h);
    const fromC = await roundTrip(port, hello('c'), 150);
    expect(fromC.closed).toBe(true);
    expect(fromC.data.subarray(challenge.length).length).toBe(0);
    expect(p.stats.unidentified).toBe(0);
  });

  it('applies links to requests a follower forwards, never to clients', async () => {
    const p = proxy();
    const port = await p.listenHttp('b', await echo());
    p.setLink('a', 'b', { blocked: true });
    const client = await roundTrip(port, Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 100);
    expect(client.data.toString()).toContain('GET /');
    const fwd = await roundTrip(
      port,
      Buffer.from('GET / HTTP/1.1\r\nhost: x\r\nx-tsraft-forwarded: a\r\n\r\n'),
      100,
    );
    expect(fwd.closed).toBe(true);
    expect(fwd.data.length).toBe(0);
  });
});
