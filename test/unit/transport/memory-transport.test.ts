import { describe, expect, it } from 'vitest';
import type { Message, NodeId } from '../../../src/core/messages.js';
import { isRaftError } from '../../../src/errors.js';
import { MemoryNetwork, type MemoryTransport } from '../../../src/transport/memory-transport.js';

function beat(from: NodeId, to: NodeId, term = 1): Message {
  return { type: 'beat', from, to, term };
}

async function cluster(net: MemoryNetwork, ...ids: NodeId[]) {
  const out: { t: MemoryTransport; received: Message[]; unreachable: NodeId[] }[] = [];
  for (const id of ids) {
    const received: Message[] = [];
    const unreachable: NodeId[] = [];
    const t = net.transport(id, { events: { onUnreachable: (p) => unreachable.push(p) } });
    await t.start((m) => received.push(m));
    out.push({ t, received, unreachable });
  }
  return out;
}

describe('MemoryNetwork', () => {
  it('delivers asynchronously, never inside send()', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await cluster(net, 'a', 'b');
    a!.t.send([beat('a', 'b')]);
    expect(b!.received).toEqual([]);
    await net.whenIdle();
    expect(b!.received).toEqual([beat('a', 'b')]);
  });

  it('whenIdle() waits for replies sent during delivery', async () => {
    const net = new MemoryNetwork();
    const received: Message[] = [];
    const a = net.transport('a');
    const b = net.transport('b');
    await a.start((m) => received.push(m));
    await b.start((m) => b.send([{ ...m, from: 'b', to: 'a' }]));
    a.send([beat('a', 'b')]);
    await net.whenIdle();
    expect(received).toEqual([beat('b', 'a')]);
  });

  it('block() cuts one direction only; unblock() restores it', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await cluster(net, 'a', 'b');
    net.block('a', 'b');
    a!.t.send([beat('a', 'b')]);
    b!.t.send([beat('b', 'a')]);
    await net.whenIdle();
    expect(b!.received).toEqual([]);
    expect(a!.received).toHaveLength(1);
    // A blocked link loses messages silently, like a partition: no unreachable report.
    expect(a!.unreachable).toEqual([]);
    net.unblock('a', 'b');
    a!.t.send([beat('a', 'b', 2)]);
    await net.whenIdle();
    expect(b!.received).toEqual([beat('a', 'b', 2)]);
  });

  it('a partition also catches messages already in flight', async () => {
    const net = new MemoryNetwork();
    const [a, b, c] = await cluster(net, 'a', 'b', 'c');
    a!.t.send([beat('a', 'b'), beat('a', 'c')]);
    net.partition(['a'], ['b', 'c']);
    await net.whenIdle();
    expect(b!.received).toEqual([]);
    expect(c!.received).toEqual([]);
    b!.t.send([beat('b', 'c')]);
    await net.whenIdle();
    expect(c!.received).toHaveLength(1);
    net.heal();
    a!.t.send([beat('a', 'b')]);
    await net.whenIdle();
    expect(b!.received).toHaveLength(1);
  });

  it('isolate() cuts a node off both ways', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await cluster(net, 'a', 'b');
    net.isolate('a');
    a!.t.send([beat('a', 'b')]);
    b!.t.send([beat('b', 'a')]);
    await net.whenIdle();
    expect(a!.received.length + b!.received.length).toBe(0);
    expect(net.isBlocked('a', 'b') && net.isBlocked('b', 'a')).toBe(true);
  });

  it('drops by seeded rate (reproducibly) and by filter', async () => {
    const run = async (seed: number): Promise<number[]> => {
      const net = new MemoryNetwork({ seed });
      const [a, b] = await cluster(net, 'a', 'b');
      net.setDropRate(0.5);
      a!.t.send(Array.from({ length: 200 }, (_, i) => beat('a', 'b', i)));
      await net.whenIdle();
      return b!.received.map((m) => m.term);
    };
    const one = await run(7);
    expect(one.length).toBeGreaterThan(50);
    expect(one.length).toBeLessThan(150);
    expect(await run(7)).toEqual(one);
    // What survives is still in order.
    expect([...one].sort((x, y) => x - y)).toEqual(one);

    const net = new MemoryNetwork();
    const [a, b] = await cluster(net, 'a', 'b');
    net.setDropFilter((m) => m.term % 2 === 0);
    a!.t.send([1, 2, 3, 4].map((t) => beat('a', 'b', t)));
    await net.whenIdle();
    expect(b!.received.map((m) => m.term)).toEqual([1, 3]);
    expect(() => net.setDropRate(2)).toThrow();
  });

  it('a node that is closed or not started is unreachable; a restarted one gets messages again', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await cluster(net, 'a', 'b');
    await b!.t.close();
    a!.t.send([beat('a', 'b'), beat('a', 'b'), beat('a', 'never-started')]);
    net.transport('never-started');
    await net.whenIdle();
    await Promise.resolve();
    expect(a!.unreachable).toEqual(['b', 'never-started']);
    const b2: Message[] = [];
    await net.transport('b').start((m) => b2.push(m));
    a!.t.send([beat('a', 'b', 5)]);
    await net.whenIdle();
    expect(b2).toEqual([beat('a', 'b', 5)]);
    expect(net.delivered).toBe(1);
    expect(net.dropped).toBe(3);
  });

  it('refuses a second live transport with the same id', () => {
    const net = new MemoryNetwork();
    net.transport('a');
    let thrown: unknown;
    try {
      net.transport('a');
    } catch (e) {
      thrown = e;
    }
    expect(isRaftError(thrown, 'CONFIG_INVALID')).toBe(true);
  });

  it('runs deliveries through a custom scheduler', async () => {
    const pending: (() => void)[] = [];
    const net = new MemoryNetwork({ schedule: (run) => pending.push(run) });
    const [a, b] = await cluster(net, 'a', 'b');
    a!.t.send([beat('a', 'b')]);
    await Promise.resolve();
    expect(b!.received).toEqual([]);
    pending.shift()!();
    expect(b!.received).toHaveLength(1);
  });
});
