import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Message, NodeId } from '../../../src/core/messages.js';
import { isRaftError } from '../../../src/errors.js';
import { formatAddress, parseAddress } from '../../../src/transport/address.js';
import { encodeFrames } from '../../../src/transport/codec.js';
import { FrameDecoder, frameBuffer } from '../../../src/transport/framing.js';
import {
  decodeAccept,
  decodeChallenge,
  decodeHello,
  encodeAccept,
  encodeChallenge,
  encodeHello,
  newNonce,
  verifyHello,
} from '../../../src/transport/handshake.js';
import type { TransportLogLevel } from '../../../src/transport/logger.js';
import { TcpTransport, type TcpTransportOptions } from '../../../src/transport/tcp-transport.js';

const SECRET = 'tcp-test-secret';

interface LogLine {
  readonly level: TransportLogLevel;
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

interface Peer {
  readonly t: TcpTransport;
  readonly id: NodeId;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshots: [NodeId, boolean][];
  readonly links: [NodeId, boolean][];
  readonly logs: LogLine[];
  readonly addr: string;
}

let open: TcpTransport[] = [];
const sockets: Socket[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await Promise.all(open.map((t) => t.close()));
  open = [];
});

async function waitFor(cond: () => boolean, what: string, ms = 4_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function peer(id: NodeId, opts: Partial<TcpTransportOptions> = {}): Promise<Peer> {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const snapshots: [NodeId, boolean][] = [];
  const links: [NodeId, boolean][] = [];
  const logs: LogLine[] = [];
  const t = new TcpTransport({
    id,
    listen: '127.0.0.1:0',
    secret: SECRET,
    backoffMinMs: 10,
    backoffMaxMs: 100,
    logger: (level, event, fields) => logs.push({ level, event, fields }),
    events: {
      onUnreachable: (p) => unreachable.push(p),
      onSnapshotSent: (p, ok) => snapshots.push([p, ok]),
      onLinkChange: (p, up) => links.push([p, up]),
    },
    ...opts,
  });
  open.push(t);
  await t.start((m) => received.push(m));
  return { t, id, received, unreachable, snapshots, links, logs, addr: formatAddress(t.address()) };
}

function link(...ps: Peer[]): void {
  for (const a of ps) for (const b of ps) if (a !== b) a.t.addPeer(b.id, b.addr);
}

function app(from: NodeId, to: NodeId, seq: number, size = 8): Message {
  return {
    type: 'app',
    from,
    to,
    term: 1,
    prevIndex: seq,
    prevTerm: 1,
    commit: 0,
    entries: [{ term: 1, index: seq + 1, type: 'normal', data: new Uint8Array(size).fill(seq & 0xff) }],
  };
}
const seqs = (ms: readonly Message[]): number[] => ms.map((m) => (m.type === 'app' ? m.prevIndex : -1));
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);
const hasLog = (p: Peer, event: string, text?: string): boolean =>
  p.logs.some((l) => l.event === event && (text === undefined || JSON.stringify(l.fields).includes(text)));

/** A raw socket to `addr`, read through a frame decoder. */
function raw(addr: string): { s: Socket; frames: Buffer[]; closed: Promise<void> } {
  const { host, port } = parseAddress(addr);
  const s = connect({ host, port });
  sockets.push(s);
  const frames: Buffer[] = [];
  const d = new FrameDecoder(1 << 20);
  s.on('data', (c: Buffer) => d.push(c, (f) => frames.push(f)));
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  return { s, frames, closed };
}

/** A raw socket that completes the handshake as `id` with `secret`. */
async function rawAuthed(addr: string, id: NodeId, secret = SECRET): Promise<ReturnType<typeof raw>> {
  const r = raw(addr);
  await waitFor(() => r.frames.length >= 1, 'challenge');
  const serverNonce = decodeChallenge(r.frames[0]!);
  const clientNonce = newNonce();
  r.s.write(encodeHello(Buffer.from(secret), serverNonce, clientNonce, id));
  await waitFor(() => r.frames.length >= 2, 'accept');
  decodeAccept(r.frames[1]!);
  return r;
}

async function closedWithin(closed: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([closed.then(() => true), sleep(ms).then(() => false)]);
}

describe('TcpTransport: delivery', () => {
  it('three transports exchange messages all-to-all, each link in order', async () => {
    const ps = await Promise.all(['a', 'b', 'c'].map((id) => peer(id)));
    link(...ps);
    for (let i = 0; i < 500; i++) {
      for (const from of ps) {
        from.t.send(ps.filter((p) => p !== from).map((to) => app(from.id, to.id, i)));
      }
    }
    await waitFor(() => ps.every((p) => p.received.length === 1000), '1000 messages at each');
    for (const to of ps) {
      for (const from of ps) {
        if (from === to) continue;
        expect(seqs(to.received.filter((m) => m.from === from.id))).toEqual(range(500));
      }
    }
    expect(ps.every((p) => p.links.length === 2 && p.links.every(([, up]) => up))).toBe(true);
  });

  it('writes a batch for one peer with a single writev', async () => {
    const [a, b] = [await peer('a'), await peer('b')];
    link(a, b);
    a.t.send([app('a', 'b', 0)]);
    await waitFor(() => b.received.length === 1, 'link up');
    await sleep(20);
    const writev = vi.spyOn(Socket.prototype as unknown as { _writev: () => void }, '_writev');
    const write = vi.spyOn(Socket.prototype as unknown as { _write: () => void }, '_write');
    // Large entries travel by reference: several chunks, still one writev.
    a.t.send(range(20, 1).map((i) => app('a', 'b', i, 16 * 1024)));
    expect(writev).toHaveBeenCalledTimes(1);
    expect(write).not.toHaveBeenCalled();
    writev.mockRestore();
    write.mockRestore();
    await waitFor(() => b.received.length === 21, 'the batch');
    expect(seqs(b.received)).toEqual(range(21));
  });

  it('a peer that does not read fills only its own bounded queue; the others flow', async () => {
    // A "slow" peer: completes the handshake, then never reads again.
    const stalled: Socket[] = [];
    const slow = createServer((s) => {
      stalled.push(s);
      const nonce = newNonce();
      s.write(encodeChallenge(nonce));
      const d = new FrameDecoder(1024);
      s.on('data', (c: Buffer) =>
        d.push(c, (f) => {
          s.write(encodeAccept(Buffer.from(SECRET), nonce, decodeHello(f), 'slow'));
          s.pause();
        }),
      );
    });
    servers.push(slow);
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const slowAddr = `127.0.0.1:${(slow.address() as AddressInfo).port}`;

    const a = await peer('a', { maxQueueBytes: 1 << 20 });
    const b = await peer('b');
    a.t.addPeer('b', b.addr);
    a.t.addPeer('slow', slowAddr);
    await waitFor(() => a.links.some(([p, up]) => p === 'slow' && up), 'link to slow up');
    const big = 64 * 1024;
    for (let i = 0; i < 200; i++) {
      a.t.send([app('a', 'slow', i, big), app('a', 'b', i)]);
      if (i % 20 === 0) await sleep(1);
    }
    await waitFor(() => b.received.length === 200, 'all 200 at b');
    expect(seqs(b.received)).toEqual(range(200));
    await waitFor(() => a.unreachable.includes('slow'), 'slow reported unreachable');
    const stats = a.t.linkStats()['slow']!;
    expect(stats.dropped).toBeGreaterThan(0);
    // Bounded: what is queued for the slow peer stays near maxQueueBytes (plus one frame).
    expect(stats.queuedBytes).toBeLessThanOrEqual((1 << 20) + big + 100);
    for (const s of stalled) s.destroy();
  });

  it('reconnects after the peer restarts on the same port', async () => {
    const a = await peer('a');
    let b = await peer('b');
    link(a, b);
    a.t.send([app('a', 'b', 0)]);
    await waitFor(() => b.received.length === 1, 'first message');
    const port = b.t.address().port;
    await b.t.close();
    await waitFor(() => a.unreachable.includes('b'), 'b unreachable');
    expect(a.links).toContainEqual(['b', false]);
    // Dropped while b is down, not queued forever and not thrown.
    expect(() => a.t.send([app('a', 'b', 1)])).not.toThrow();

    b = await peer('b', { listen: `127.0.0.1:${port}` });
    let seq = 2;
    while (b.received.length === 0) {
      a.t.send([app('a', 'b', seq++)]);
      await sleep(10);
      if (seq > 300) throw new Error('no reconnect within 3 s');
    }
    const first = seqs(b.received)[0]!;
    a.t.send(range(10, seq).map((i) => app('a', 'b', i)));
    await waitFor(() => b.received.length === seq - first + 10, 'messages after reconnect');
    expect(seqs(b.received)).toEqual(range(seq - first + 10, first));
    expect(a.links.filter(([p]) => p === 'b').map(([, up]) => up)).toEqual([true, false, true]);
    expect(a.t.linkStats()['b']!.state).toBe('up');
  });

  it('drops a message larger than maxFrameBytes, keeps the rest in order, and fails its snapshot', async () => {
    const a = await peer('a', { maxFrameBytes: 4096 });
    const b = await peer('b', { maxFrameBytes: 4096 });
    link(a, b);
    const snap: Message = {
      type: 'snap',
      from: 'a',
      to: 'b',
      term: 1,
      snapshot: {
        meta: {
          index: 5,
          term: 1,
          conf: { voters: ['a', 'b'], outgoing: [], learners: [], learnersNext: [] },
        },
        data: new Uint8Array(5000),
      },
    };
    a.t.send([app('a', 'b', 0), app('a', 'b', 1, 10_000), snap, app('a', 'b', 2)]);
    await waitFor(() => b.received.length === 2, 'the two small messages');
    expect(seqs(b.received)).toEqual([0, 2]);
    await waitFor(() => a.snapshots.length === 1, 'snapshot report');
    expect(a.snapshots).toEqual([['b', false]]);
    expect(hasLog(a, 'message-dropped', 'maxFrameBytes')).toBe(true);
  });
});

describe('TcpTransport: authentication', () => {
  it('refuses a peer with the wrong secret; both sides stay healthy', async () => {
    const a = await peer('a', { secret: 'secret-one' });
    const b = await peer('b', { secret: 'secret-two' });
    const c = await peer('c', { secret: 'secret-one' });
    const d = await peer('d', { secret: 'secret-two' });
    link(a, b);
    link(a, c);
    link(b, d);
    a.t.send([app('a', 'b', 0), app('a', 'c', 0)]);
    b.t.send([app('b', 'a', 0), app('b', 'd', 0)]);
    await waitFor(() => c.received.length === 1 && d.received.length === 1, 'good peers served');
    await waitFor(() => a.unreachable.includes('b') && b.unreachable.includes('a'), 'both report the other');
    await sleep(50);
    expect(a.received).toEqual([]);
    expect(b.received).toEqual([]);
    expect(hasLog(b, 'auth-failed', '"claimed":"a"')).toBe(true);
    expect(hasLog(a, 'handshake-failed')).toBe(true);
    // Still healthy afterwards.
    a.t.send([app('a', 'c', 1)]);
    await waitFor(() => c.received.length === 2, 'a still sends');
  });

  it('never delivers frames sent without a handshake', async () => {
    const b = await peer('b');
    const r = raw(b.addr);
    await waitFor(() => r.frames.length === 1, 'challenge');
    const { chunks } = encodeFrames([app('a', 'b', 0)]);
    for (const c of chunks) r.s.write(c);
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(b.received).toEqual([]);
    expect(hasLog(b, 'bad-frame', 'HELLO')).toBe(true);
  });

  it('refuses a HELLO replayed against a fresh challenge', async () => {
    const b = await peer('b');
    const first = await rawAuthed(b.addr, 'a');
    // Capture what a legitimate client sent, then replay it on a new connection.
    const r = raw(b.addr);
    await waitFor(() => r.frames.length === 1, 'challenge');
    const stale = encodeHello(Buffer.from(SECRET), newNonce(), newNonce(), 'a');
    r.s.write(stale);
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(hasLog(b, 'auth-failed')).toBe(true);
    first.s.destroy();
  });

  it('closes an unauthenticated connection that stays silent', async () => {
    const b = await peer('b', { handshakeTimeoutMs: 100 });
    const r = raw(b.addr);
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(hasLog(b, 'handshake-timeout')).toBe(true);
  });

  it('does not deliver to a server that is not the peer it meant to reach', async () => {
    const a = await peer('a');
    const b = await peer('b');
    a.t.addPeer('c', b.addr); // misconfigured: "c" points at b
    a.t.send([app('a', 'c', 0)]);
    await waitFor(() => hasLog(a, 'handshake-failed', 'reached b'), 'mismatch logged');
    expect(b.received).toEqual([]);
    await waitFor(() => a.unreachable.includes('c'), 'c reported unreachable');
  });

  it('verifies HELLO with a constant-time MAC check bound to the nonce', () => {
    const nonce = newNonce();
    const hello = decodeHello(encodeHello(Buffer.from(SECRET), nonce, newNonce(), 'a').subarray(4));
    expect(verifyHello(Buffer.from(SECRET), nonce, hello)).toBe(true);
    expect(verifyHello(Buffer.from('other'), nonce, hello)).toBe(false);
    expect(verifyHello(Buffer.from(SECRET), newNonce(), hello)).toBe(false);
    expect(verifyHello(Buffer.from(SECRET), nonce, { ...hello, clientId: 'b' })).toBe(false);
  });
});

describe('TcpTransport: bad input on the wire', () => {
  async function pair(): Promise<[Peer, Peer]> {
    const a = await peer('a');
    const b = await peer('b');
    link(a, b);
    return [a, b];
  }

  async function stillWorks(a: Peer, b: Peer): Promise<void> {
    const before = b.received.length;
    a.t.send([app('a', 'b', 99)]);
    await waitFor(() => b.received.length === before + 1, 'good peer still delivered');
  }

  it('garbage bytes before the handshake: closed, logged, others unaffected', async () => {
    const [a, b] = await pair();
    const r = raw(b.addr);
    r.s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(hasLog(b, 'bad-frame')).toBe(true);
    await stillWorks(a, b);
  });

  it('an oversized frame from an authenticated peer: closed at its header', async () => {
    const [a, b] = await pair();
    const r = await rawAuthed(b.addr, 'x');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xfffffff0, 0);
    r.s.write(header);
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(hasLog(b, 'bad-frame', 'exceeds')).toBe(true);
    await stillWorks(a, b);
  });

  it('a garbage frame from an authenticated peer: closed, nothing delivered', async () => {
    const [a, b] = await pair();
    const r = await rawAuthed(b.addr, 'x');
    r.s.write(frameBuffer(Buffer.from([1, 9, 0, 0xff, 0xff, 1, 2, 3])));
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(hasLog(b, 'bad-frame', 'malformed')).toBe(true);
    expect(b.received.filter((m) => m.from === 'x')).toEqual([]);
    await stillWorks(a, b);
  });

  it('a frame cut off by the end of the stream: logged, connection closed', async () => {
    const [a, b] = await pair();
    const r = await rawAuthed(b.addr, 'x');
    const { chunks } = encodeFrames([app('x', 'b', 0, 100)]);
    const whole = Buffer.concat(chunks);
    r.s.end(whole.subarray(0, whole.byteLength - 10));
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    await waitFor(() => hasLog(b, 'bad-frame', 'inside a frame'), 'truncation logged');
    expect(b.received.filter((m) => m.from === 'x')).toEqual([]);
    await stillWorks(a, b);
  });

  it('a message whose sender is not the authenticated peer: closed, not delivered', async () => {
    const [a, b] = await pair();
    const r = await rawAuthed(b.addr, 'x');
    const good = encodeFrames([app('x', 'b', 0)]).chunks;
    const spoofed = encodeFrames([app('a', 'b', 1)]).chunks;
    for (const c of [...good, ...spoofed]) r.s.write(c);
    expect(await closedWithin(r.closed, 2_000)).toBe(true);
    expect(seqs(b.received.filter((m) => m.from === 'x'))).toEqual([0]);
    expect(b.received.filter((m) => m.from === 'a')).toEqual([]);
    expect(hasLog(b, 'bad-frame', 'a->b')).toBe(true);
    await stillWorks(a, b);
  });
});

describe('TcpTransport: TLS', () => {
  let dir = '';
  let tls: { cert: Buffer; key: Buffer } | undefined;

  /** A fresh self-signed certificate for 127.0.0.1 (openssl CLI). */
  function selfSigned(name: string): { cert: Buffer; key: Buffer } {
    const key = path.join(dir, `${name}-key.pem`);
    const cert = path.join(dir, `${name}-cert.pem`);
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      ],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(cert), key: readFileSync(key) };
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsraft-tls-'));
    // One self-signed certificate for the whole test cluster (trusted as its own CA).
    tls = selfSigned('cluster');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips messages over mutual TLS', async () => {
    const a = await peer('a', { tls: tls! });
    const b = await peer('b', { tls: { ...tls!, ca: tls!.cert } });
    link(a, b);
    a.t.send(range(50).map((i) => app('a', 'b', i, 300)));
    b.t.send([app('b', 'a', 0)]);
    await waitFor(() => b.received.length === 50 && a.received.length === 1, 'messages both ways');
    expect(seqs(b.received)).toEqual(range(50));
    expect(hasLog(b, 'listening', '"tls":true')).toBe(true);
  });

  it('a plain-TCP client cannot reach a TLS server; the server lives on', async () => {
    const a = await peer('a', { tls: tls! });
    const b = await peer('b', { tls: tls! });
    // Each side waits for the other to speak first; the handshake timeout ends it.
    const plain = await peer('p', { handshakeTimeoutMs: 200 });
    link(a, b);
    plain.t.addPeer('b', b.addr);
    plain.t.send([app('p', 'b', 0)]);
    await waitFor(() => plain.unreachable.includes('b'), 'plain client fails');
    a.t.send([app('a', 'b', 1)]);
    await waitFor(() => b.received.length === 1, 'TLS peer still served');
    expect(b.received[0]!.from).toBe('a');
  });

  it('refuses a peer whose certificate the cluster CA did not sign, even with the right secret', async () => {
    const a = await peer('a', { tls: tls! });
    const b = await peer('b', { tls: tls! });
    const stranger = await peer('s', { tls: selfSigned('stranger') });
    link(a, b);
    stranger.t.addPeer('b', b.addr);
    stranger.t.send([app('s', 'b', 0)]);
    await waitFor(() => stranger.unreachable.includes('b'), 'stranger refused');
    await waitFor(() => hasLog(b, 'tls-failed'), 'TLS failure logged');
    a.t.send([app('a', 'b', 1)]);
    await waitFor(() => b.received.length === 1, 'TLS peer still served');
    expect(b.received.map((m) => m.from)).toEqual(['a']);
  });
});

describe('TcpTransport: configuration', () => {
  it('rejects invalid options with ConfigError naming the rule', () => {
    const base = { id: 'a', listen: '127.0.0.1:0', secret: 's' };
    const bad = (o: Partial<TcpTransportOptions>, text: string): void => {
      let thrown: unknown;
      try {
        new TcpTransport({ ...base, ...o });
      } catch (e) {
        thrown = e;
      }
      expect(isRaftError(thrown, 'CONFIG_INVALID'), String(thrown)).toBe(true);
      expect(String(thrown)).toContain(text);
    };
    bad({ secret: '' }, 'secret');
    bad({ maxFrameBytes: 10 }, 'maxFrameBytes');
    bad({ backoffMinMs: 100, backoffMaxMs: 10 }, 'backoffMaxMs');
    bad({ listen: 'localhost' }, 'port');
    bad({ peers: { b: 'ftp://x:1' } }, 'tcp://');
    bad({ id: '' }, 'id');
  });

  it('parses the address forms peers are given in', () => {
    expect(parseAddress('127.0.0.1:2380')).toEqual({ host: '127.0.0.1', port: 2380 });
    expect(parseAddress('tcp://node-1:2380')).toEqual({ host: 'node-1', port: 2380 });
    expect(parseAddress('http://10.0.0.1:2380')).toEqual({ host: '10.0.0.1', port: 2380 });
    expect(parseAddress('https://h')).toEqual({ host: 'h', port: 443 });
    expect(parseAddress('[::1]:7')).toEqual({ host: '::1', port: 7 });
    expect(formatAddress({ host: '::1', port: 7 })).toBe('[::1]:7');
  });

  it('rejects start() on a port in use with CONFIG_INVALID, and address() before start()', async () => {
    const a = await peer('a');
    const b = new TcpTransport({ id: 'b', listen: a.addr, secret: SECRET });
    open.push(b);
    expect(() => b.address()).toThrow();
    await expect(b.start(() => {})).rejects.toSatisfy((e) => isRaftError(e, 'CONFIG_INVALID'));
  });

  it('ignores its own id in the peer map', async () => {
    const t = new TcpTransport({
      id: 'a',
      listen: '127.0.0.1:0',
      secret: SECRET,
      peers: { a: '127.0.0.1:1' },
    });
    open.push(t);
    expect(t.linkStats()).toEqual({});
  });
});
