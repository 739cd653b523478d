import net from 'node:net';
import type { Rng } from './rng.js';

/**
 * The network the fault suite controls: every connection between servers goes through a TCP
 * proxy in the runner process, so links can be cut, slowed or made lossy per direction.
 *
 * tsraft's transport sends A's messages to B only on the connection A opened to B (B's
 * answers travel on B's own connection to A), so "the link A→B" is the set of connections A
 * opens to B, and cutting it alone is an asymmetric partition.
 *
 * How a proxy knows which link a connection belongs to:
 * - a **pair listener** serves one directed pair: each founding member's `--initial-cluster`
 *   names, for every other member, a port unique to (that member → the other);
 * - an **inbound listener** serves everything sent to one member over its shared address (a
 *   member added at run time has one peer URL in the log, used by everybody). It learns the
 *   sender from the transport handshake: the client's first frame is HELLO, which carries its
 *   id (src/transport/handshake.ts);
 * - an **HTTP listener** fronts a member's client port (its advertised client URL). Requests a
 *   follower forwards to the leader carry `X-Tsraft-Forwarded: <name>`, which names the link;
 *   everything else is a client, and clients reach every server whatever the partition.
 *
 * Faults: a blocked link destroys its connections and refuses new ones (`refuse`: accept and
 * close at once) or accepts and never answers them (`blackhole`: the peer waits for its
 * handshake timeout). A delay holds each chunk for `delayMs ± jitterMs`, keeping order. Loss
 * resets the whole connection with probability `resetProbability` per chunk (dropping bytes
 * inside a framed stream would only corrupt frames).
 */

/** What is wrong with one directed link. */
export interface LinkFault {
  blocked?: boolean;
  delayMs?: number;
  jitterMs?: number;
  resetProbability?: number;
}

export type BlockMode = 'refuse' | 'blackhole';

/** Counters of what the proxy did. */
export interface ProxyStats {
  connections: number;
  refused: number;
  held: number;
  resets: number;
  /** Peer connections whose sender the inbound listener could not identify (a suite bug). */
  unidentified: number;
  bytes: number;
}

interface Conn {
  from: string;
  to: string;
  client: net.Socket;
  upstream: net.Socket;
  pipes: DelayPipe[];
}

const key = (from: string, to: string): string => `${from}>${to}`;
/** The sender of ordinary client HTTP connections: never faulted. */
export const CLIENT = 'client';

export class NetworkProxy {
  private readonly servers: net.Server[] = [];
  private readonly conns = new Map<string, Set<Conn>>();
  private readonly rules = new Map<string, LinkFault>();
  private readonly held = new Set<net.Socket>();
  private readonly pending = new Set<net.Socket>();
  /** How blocked links treat new connections. */
  blockMode: BlockMode = 'refuse';
  readonly stats: ProxyStats = { connections: 0, refused: 0, held: 0, resets: 0, unidentified: 0, bytes: 0 };

  constructor(private readonly rng: Rng) {}

  /** A listener for the directed pair from→to, forwarding to `targetPort`. Resolves with its port. */
  listenPair(from: string, to: string, targetPort: number): Promise<number> {
    return this.listen((s) => this.accept(s, to, targetPort, { from }));
  }

  /** A listener for everything sent to `to` over its shared peer address (sender from HELLO). */
  listenInbound(to: string, targetPort: number): Promise<number> {
    return this.listen((s) => this.accept(s, to, targetPort, { sniff: 'hello' }));
  }

  /** A listener in front of `to`'s client port (forwarded requests name their sender). */
  listenHttp(to: string, targetPort: number): Promise<number> {
    return this.listen((s) => this.accept(s, to, targetPort, { sniff: 'http' }));
  }

  /** Sets (or, with undefined, clears) the fault of the link from→to. */
  setLink(from: string, to: string, fault: LinkFault | undefined): void {
    const k = key(from, to);
    if (fault === undefined || Object.keys(fault).length === 0) this.rules.delete(k);
    else this.rules.set(k, { ...fault });
    if (fault?.blocked) {
      for (const c of this.conns.get(k) ?? []) this.drop(c);
    }
  }

  /** Adds to the fault of from→to. */
  updateLink(from: string, to: string, fault: LinkFault): void {
    this.setLink(from, to, { ...this.rules.get(key(from, to)), ...fault });
  }

  /** Cuts every link between members of different groups, both ways. */
  partition(groups: readonly (readonly string[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.updateLink(a, b, { blocked: true });
      }
    }
  }

  /** The links currently faulted. */
  faults(): Map<string, LinkFault> {
    return new Map(this.rules);
  }

  isBlocked(from: string, to: string): boolean {
    return this.rules.get(key(from, to))?.blocked === true;
  }

  /** Clears every fault and closes connections held by a black hole. */
  heal(): void {
    this.rules.clear();
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  async close(): Promise<void> {
    this.heal();
    for (const set of this.conns.values()) for (const c of set) this.drop(c);
    for (const s of this.pending) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }

  // ------------------------------------------------------------------ internals

  private listen(onConn: (s: net.Socket) => void): Promise<number> {
    const server = net.createServer({ noDelay: true }, onConn);
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private refuse(s: net.Socket): void {
    if (this.blockMode === 'blackhole') {
      this.stats.held++;
      s.pause();
      this.held.add(s);
      s.on('error', () => undefined);
      s.once('close', () => this.held.delete(s));
    } else {
      this.stats.refused++;
      s.on('error', () => undefined);
      s.destroy();
    }
  }

  private accept(
    client: net.Socket,
    to: string,
    targetPort: number,
    how: { from: string } | { sniff: 'hello' | 'http' },
  ): void {
    client.on('error', () => undefined);
    client.setNoDelay(true);
    if ('from' in how) {
      if (this.isBlocked(how.from, to)) return this.refuse(client);
      this.connect(client, how.from, to, targetPort, []);
      return;
    }
    this.pending.add(client);
    client.once('close', () => this.pending.delete(client));
    if (how.sniff === 'http') {
      // The client speaks first: read the request head, then decide.
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (b: Buffer): void => {
        chunks.push(b);
        size += b.length;
        const head = Buffer.concat(chunks).toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0 && size < 64 * 1024) return;
        client.off('data', onData);
        client.pause();
        this.pending.delete(client);
        const m = /\r\nx-tsraft-forwarded:[ \t]*([^\r\n]+)/i.exec(head.slice(0, end < 0 ? undefined : end));
        const from = m ? m[1]!.trim() : CLIENT;
        if (this.isBlocked(from, to)) return this.refuse(client);
        this.connect(client, from, to, targetPort, chunks);
      };
      client.on('data', onData);
      return;
    }
    // HELLO sniffing: the server speaks first (CHALLENGE), so connect upstream at once and
    // relay its bytes while holding the client's until its first frame is complete.
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    let identified = false;
    upstream.on('error', () => client.destroy());
    const fromUpstream = (b: Buffer): void => {
      client.write(b);
    };
    upstream.on('data', fromUpstream);
    client.once('close', () => {
      if (!identified) upstream.destroy();
    });
    upstream.once('close', () => {
      if (!identified) client.destroy();
    });
    const chunks: Buffer[] = [];
    const onData = (b: Buffer): void => {
      chunks.push(b);
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (all.length < 4) return;
      const len = all.readUInt32BE(0);
      if (all.length < 4 + len && all.length < 4096) return;
      // Everything below runs in this one turn, so no upstream byte slips between handlers.
      identified = true;
      client.off('data', onData);
      upstream.off('data', fromUpstream);
      client.pause();
      this.pending.delete(client);
      let from = all.length >= 4 + len ? parseHelloId(all.subarray(4, 4 + len)) : undefined;
      if (from === undefined) {
        this.stats.unidentified++;
        from = '?';
      }
      if (this.isBlocked(from, to)) {
        upstream.destroy();
        return this.refuse(client);
      }
      this.connect(client, from, to, targetPort, chunks, upstream);
    };
    client.on('data', onData);
  }

  private connect(
    client: net.Socket,
    from: string,
    to: string,
    targetPort: number,
    buffered: Buffer[],
    existing?: net.Socket,
  ): void {
    const upstream = existing ?? net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    upstream.on('error', () => undefined);
    const rule = (): LinkFault | undefined => (from === CLIENT ? undefined : this.rules.get(key(from, to)));
    const delay = (): number => {
      const r = rule();
      if (!r?.delayMs) return 0;
      return Math.max(0, r.delayMs + (r.jitterMs ? this.rng.range(-r.jitterMs, r.jitterMs) : 0));
    };
    const toUp = new DelayPipe(upstream, delay);
    const toClient = new DelayPipe(client, delay);
    const c: Conn = { from, to, client, upstream, pipes: [toUp, toClient] };
    const k = key(from, to);
    let set = this.conns.get(k);
    if (!set) this.conns.set(k, (set = new Set()));
    set.add(c);
    this.stats.connections++;
    const onChunk = (pipe: DelayPipe, b: Buffer): void => {
      this.stats.bytes += b.length;
      const p = rule()?.resetProbability;
      if (p && this.rng.chance(p)) {
        this.stats.resets++;
        this.drop(c, true);
        return;
      }
      pipe.write(b);
    };
    for (const b of buffered) onChunk(toUp, b);
    client.on('data', (b: Buffer) => onChunk(toUp, b));
    upstream.on('data', (b: Buffer) => onChunk(toClient, b));
    const done = (): void => {
      set.delete(c);
      this.drop(c);
    };
    client.once('close', done);
    upstream.once('close', done);
    client.resume();
  }

  private drop(c: Conn, reset = false): void {
    for (const p of c.pipes) p.destroy();
    if (reset) {
      if (!c.client.destroyed) c.client.resetAndDestroy();
      if (!c.upstream.destroyed) c.upstream.resetAndDestroy();
    } else {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.conns.get(key(c.from, c.to))?.delete(c);
  }
}

/** The client id in a HELLO frame payload (version, kind 0xf2, nonce, mac, u16 length, id). */
function parseHelloId(p: Buffer): string | undefined {
  const at = 2 + 32 + 32;
  if (p.length < at + 2 || p[1] !== 0xf2) return undefined;
  const n = p.readUInt16BE(at);
  if (n === 0 || p.length !== at + 2 + n) return undefined;
  return p.toString('utf8', at + 2, at + 2 + n);
}

/** One direction of a connection: writes chunks after a delay, in order. */
class DelayPipe {
  private readonly q: { b: Buffer; at: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private dead = false;

  constructor(
    private readonly dst: net.Socket,
    private readonly delay: () => number,
  ) {}

  write(b: Buffer): void {
    if (this.dead) return;
    const d = this.delay();
    if (d <= 0 && this.q.length === 0) {
      this.dst.write(b);
      return;
    }
    const at = Math.max(performance.now() + d, this.last);
    this.last = at;
    this.q.push({ b, at });
    this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined || this.q.length === 0 || this.dead) return;
    const wait = Math.max(0, this.q[0]!.at - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      while (this.q.length > 0 && this.q[0]!.at <= now + 0.5) this.dst.write(this.q.shift()!.b);
      this.arm();
    }, wait);
  }

  destroy(): void {
    this.dead = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.q.length = 0;
  }
}
