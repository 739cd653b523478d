import type { Message, NodeId, SnapMsg } from '../core/messages.js';
import { SeededRand } from '../core/rand.js';
import { ConfigError, RaftError } from '../errors.js';
import type {
  IncomingSnapshot,
  MessageHandler,
  SnapshotPayload,
  SnapshotSink,
  Transport,
  TransportEvents,
} from './transport.js';

/** Options of {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed of the generator behind {@link MemoryNetwork.setDropRate}. Default 1. */
  readonly seed?: number;
  /**
   * How a delivery round is scheduled. Default `setImmediate` (lets I/O and timers interleave);
   * pass `queueMicrotask` for tighter loops, or your own scheduler under fake timers.
   */
  readonly schedule?: (run: () => void) => void;
}

/** Decides whether one message is lost (`true` drops it). */
export type DropFilter = (m: Message) => boolean;

const linkKey = (from: NodeId, to: NodeId): string => `${from}\u0000${to}`;

interface InFlight {
  readonly sender: MemoryTransport;
  readonly m: Message;
}

/**
 * An in-process network for tests of the node runtime: every {@link MemoryTransport} created by
 * {@link transport} can reach the others by id. Delivery is asynchronous (never inside `send()`)
 * and FIFO per link. Faults: one-way blocks, partitions, a seeded drop rate and a drop filter.
 * A blocked link loses messages silently (like a partition); a destination that is closed or
 * never started loses them too and is reported unreachable to the sender (like a refused
 * connection).
 *
 * @example
 * ```ts
 * const net = new MemoryNetwork();
 * const [a, b, c] = ['n1', 'n2', 'n3'].map((id) => net.transport(id));
 * net.partition(['n1'], ['n2', 'n3']);   // n1 is cut off both ways
 * net.heal();
 * await net.whenIdle();                   // everything in flight has been delivered
 * ```
 */
export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, MemoryTransport>();
  private readonly blocked = new Set<string>();
  private readonly rand: SeededRand;
  private readonly schedule: (run: () => void) => void;
  private queue: InFlight[] = [];
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];
  private dropRate = 0;
  private dropFilter: DropFilter | undefined;
  /** Messages delivered to a handler so far. */
  delivered = 0;
  /** Messages lost so far (blocked, dropped, or no live destination). */
  dropped = 0;

  constructor(opts: MemoryNetworkOptions = {}) {
    this.rand = new SeededRand(opts.seed ?? 1);
    this.schedule = opts.schedule ?? ((run) => setImmediate(run));
  }

  /**
   * Creates the transport of node `id` on this network. A closed transport's id may be reused
   * (a restarted node); a live one may not.
   */
  transport(id: NodeId, opts: { readonly events?: TransportEvents } = {}): MemoryTransport {
    const existing = this.nodes.get(id);
    if (existing !== undefined && !existing.isClosed) {
      throw new ConfigError(`a live transport named ${id} already exists on this network`);
    }
    const t = new MemoryTransport(this, id, opts.events);
    this.nodes.set(id, t);
    return t;
  }

  /** Loses every message from `from` to `to` (one way) until {@link unblock} or {@link heal}. */
  block(from: NodeId, to: NodeId): void {
    this.blocked.add(linkKey(from, to));
  }

  unblock(from: NodeId, to: NodeId): void {
    this.blocked.delete(linkKey(from, to));
  }

  /** True when messages from `from` to `to` are blocked. */
  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(linkKey(from, to));
  }

  /** Blocks both directions between every pair of nodes in different groups. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.block(a, b);
      }
    }
  }

  /** Cuts `id` off from every other node, both ways. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.block(id, other);
      this.block(other, id);
    }
  }

  /** Removes every block, the drop rate and the drop filter. */
  heal(): void {
    this.blocked.clear();
    this.dropRate = 0;
    this.dropFilter = undefined;
  }

  /** Loses each message with probability `p` (drawn from the seeded generator). */
  setDropRate(p: number): void {
    if (!(p >= 0 && p <= 1)) throw new ConfigError(`drop rate must be in [0, 1], got ${p}`);
    this.dropRate = p;
  }

  /** Loses every message for which `filter` returns true (`undefined` removes the filter). */
  setDropFilter(filter: DropFilter | undefined): void {
    this.dropFilter = filter;
  }

  /** Resolves once no message is in flight (deliveries may send more; those are awaited too). */
  whenIdle(): Promise<void> {
    if (this.queue.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** @internal Called by {@link MemoryTransport.send}. */
  enqueue(sender: MemoryTransport, msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (this.dropFilter?.(m) === true || (this.dropRate > 0 && this.rand.float() < this.dropRate)) {
        this.lose(sender, m, false);
        continue;
      }
      this.queue.push({ sender, m });
    }
    this.kick();
  }

  private kick(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    // Messages sent while delivering go to the next round, so a chatty pair cannot starve I/O.
    const batch = this.queue;
    this.queue = [];
    for (const { sender, m } of batch) this.deliver(sender, m);
    if (this.queue.length > 0) {
      this.kick();
      return;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private deliver(sender: MemoryTransport, m: Message): void {
    // Blocks are checked at delivery time: a partition also catches what is already in flight.
    if (this.blocked.has(linkKey(m.from, m.to))) {
      this.lose(sender, m, false);
      return;
    }
    const dest = this.nodes.get(m.to);
    if (dest === undefined || !dest.isListening) {
      this.lose(sender, m, true);
      return;
    }
    this.delivered++;
    dest.receive(m);
    sender.notifyDelivered(m.to);
    if (m.type === 'snap') sender.notifySnapshot(m.to, true);
  }

  /**
   * @internal Streams a snapshot's chunks into the destination's sink (see
   * {@link MemoryTransport.sendSnapshot}); blocks and closes are checked at every chunk.
   */
  async streamSnapshot(sender: MemoryTransport, m: SnapMsg, payload: SnapshotPayload): Promise<void> {
    let incoming: IncomingSnapshot | undefined;
    const lost = (): boolean => {
      const dest = this.nodes.get(m.to);
      return (
        this.blocked.has(linkKey(m.from, m.to)) || dest === undefined || !dest.isListening || sender.isClosed
      );
    };
    let ok = false;
    try {
      if (this.dropFilter?.(m) === true || (this.dropRate > 0 && this.rand.float() < this.dropRate)) return;
      if (lost()) return;
      incoming = this.nodes.get(m.to)!.snapshotSink?.begin(m, payload.size);
      if (incoming === undefined) return;
      let got = 0;
      for await (const c of payload.chunks) {
        // A chunk at a time, letting other traffic through in between.
        await new Promise<void>((r) => this.schedule(r));
        if (lost()) return;
        await incoming.write(c);
        got += c.byteLength;
      }
      if (got !== payload.size || lost()) return;
      await incoming.finish();
      incoming = undefined;
      ok = true;
      this.delivered++;
    } catch {
      // the stream failed
    } finally {
      incoming?.abort('stream failed');
      payload.release?.();
      if (!ok) this.dropped++;
      sender.notifySnapshot(m.to, ok);
    }
  }

  private lose(sender: MemoryTransport, m: Message, unreachable: boolean): void {
    this.dropped++;
    if (m.type === 'snap') sender.notifySnapshot(m.to, false);
    if (unreachable) sender.notifyUnreachable(m.to);
  }
}

/**
 * A {@link Transport} on a {@link MemoryNetwork}. It can reach every node of its network by id,
 * except peers removed with `removePeer` (until `addPeer` again; the address is ignored).
 * Messages to a peer arrive in the order sent, asynchronously, or not at all.
 */
export class MemoryTransport implements Transport {
  private handler: MessageHandler | undefined;
  /** @internal Where streamed snapshots go (given to `start`). */
  snapshotSink: SnapshotSink | undefined;
  private closed = false;
  private readonly removed = new Set<NodeId>();
  private readonly reported = new Set<NodeId>();

  /** @internal Use {@link MemoryNetwork.transport}. */
  constructor(
    private readonly network: MemoryNetwork,
    readonly id: NodeId,
    private readonly events: TransportEvents | undefined,
  ) {}

  /** True once closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** True while started and not closed (able to receive). */
  get isListening(): boolean {
    return this.handler !== undefined && !this.closed;
  }

  start(handler: MessageHandler, snapshots?: SnapshotSink): Promise<void> {
    if (this.closed) return Promise.reject(new RaftError('STOPPED', 'the transport was closed'));
    if (this.handler !== undefined) {
      return Promise.reject(new RaftError('CONFIG_INVALID', 'start() may be called only once'));
    }
    this.handler = handler;
    this.snapshotSink = snapshots;
    return Promise.resolve();
  }

  /**
   * Streams a snapshot's bytes chunk by chunk into the peer's {@link SnapshotSink}, like the
   * TCP transport (without one there, the stream fails). Reported through `onSnapshotSent`.
   */
  sendSnapshot(m: SnapMsg, payload: SnapshotPayload): void {
    if (this.closed) {
      payload.release?.();
      return;
    }
    if (this.removed.has(m.to) || m.to === this.id) {
      payload.release?.();
      this.notifySnapshot(m.to, false);
      return;
    }
    void this.network.streamSnapshot(this, m, payload);
  }

  send(msgs: readonly Message[]): void {
    if (this.closed || msgs.length === 0) return;
    let out: Message[] | undefined;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (this.removed.has(m.to) || m.to === this.id) {
        // Not a peer: dropped here, like the TCP transport; an unknown peer is reported unreachable.
        out ??= msgs.slice(0, i);
        if (m.type === 'snap') this.notifySnapshot(m.to, false);
        if (m.to !== this.id) this.notifyUnreachable(m.to);
        continue;
      }
      out?.push(m);
    }
    this.network.enqueue(this, out ?? msgs);
  }

  addPeer(id: NodeId, _address: string): void {
    this.removed.delete(id);
  }

  removePeer(id: NodeId): void {
    this.removed.add(id);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** @internal Delivery from the network. */
  receive(m: Message): void {
    try {
      this.handler?.(m);
    } catch {
      // The handler must not throw (Transport contract); if it does, the link survives.
    }
  }

  /** @internal */
  notifySnapshot(peer: NodeId, ok: boolean): void {
    this.emit((ev) => ev.onSnapshotSent?.(peer, ok));
  }

  /** @internal A message reached `peer`: its outage, if any, is over. */
  notifyDelivered(peer: NodeId): void {
    if (this.reported.size > 0) this.reported.delete(peer);
  }

  /** @internal Reported once per outage: until a message to `peer` gets through again. */
  notifyUnreachable(peer: NodeId): void {
    if (this.reported.has(peer)) return;
    this.reported.add(peer);
    this.emit((ev) => ev.onUnreachable?.(peer));
  }

  private emit(fn: (ev: TransportEvents) => void): void {
    const ev = this.events;
    if (ev === undefined || this.closed) return;
    queueMicrotask(() => {
      if (this.closed) return;
      try {
        fn(ev);
      } catch {
        // An event handler must not break delivery.
      }
    });
  }
}
