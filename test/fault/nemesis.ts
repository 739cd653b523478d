import { KvClient } from '../../src/client/index.js';
import { sleep, type FaultCluster, type FaultMember } from './fault-cluster.js';
import type { LinkFault } from './proxy.js';
import type { Rng } from './rng.js';

/**
 * The nemeses: faults injected into a running {@link FaultCluster}, each undone by its heal.
 *
 * | name | what it does |
 * | --- | --- |
 * | `partition` | cuts links through the proxy: isolate the leader, a random majority/minority split, a bridge (one member sees both sides), one-way cuts of the leader's outbound or inbound links, random directed links; new connections refused or black-holed |
 * | `kill` | SIGKILL one member, the leader, a minority, a majority or all; restarted at heal in random order (with `all`, sometimes the old leader last, after the others elected); `freeze-followers`: SIGSTOP the followers, let the leader run on, then SIGKILL everyone and restart the old leader last |
 * | `pause` | SIGSTOP the leader (or a random member, or a minority) for longer than the election timeout, then SIGCONT |
 * | `slow` | delays every chunk on all links, or on one member's links, by 50–800 ms ± jitter |
 * | `lossy` | resets connections at random (per chunk) on all links or one member's |
 * | `isolate-kill` | cuts a follower off (both ways, or only from the leader's messages) while writes go on, then at once kills the leader and heals (`stall`: and freezes the other followers just as their leader lease ends, so the stale one asks first): the stale follower must not win with a short log; the leader restarts later |
 * | `disk` | fills one member's disk (a small tmpfs, or injected ENOSPC) and forces a term change; the member must stop with a non-zero exit and nothing more; at heal the disk is freed and it restarts |
 * | `membership` | runs in the background, concurrently with the others: adds a fresh member as a voter, removes a random voter (the leader too), alternating |
 */

export const FAULT_NEMESES = ['partition', 'kill', 'pause', 'slow', 'lossy', 'isolate-kill', 'disk'] as const;
export const NEMESES = [...FAULT_NEMESES, 'membership'] as const;
export type NemesisName = (typeof NEMESES)[number];

export interface NemesisContext {
  cluster: FaultCluster;
  rng: Rng;
  /** ms since the run began. */
  now(): number;
  log(msg: string): void;
  /** Restrict the modes a nemesis picks from (teeth tests pin one). */
  modes?: Partial<Record<NemesisName, string[]>>;
  /** The servers' election timeout (its lower bound), ms: tick × election ticks. */
  electionMs: number;
}

/** One injected fault. */
export interface Fault {
  nemesis: NemesisName;
  /** e.g. "partition isolate-leader n2 | n1 n3 (refuse)". */
  description: string;
  /** Members affected (for the report). */
  targets: string[];
  /** Undoes the fault. May take a while (restarts). */
  heal(): Promise<void>;
  /** Findings the fault itself made (e.g. a full disk that did not stop its member). */
  findings?: string[];
  /** Notes (e.g. how a disk fault ended), shown in the summary. */
  notes?: string[];
}

const turns = new WeakMap<NemesisContext, Map<NemesisName, number>>();

/** A random mode, or, when modes are pinned, the next pinned one in turn (so a short run covers them all). */
function modeOf(ctx: NemesisContext, n: NemesisName, all: readonly string[]): string {
  const pinned = ctx.modes?.[n];
  if (!pinned || pinned.length === 0) return ctx.rng.pick(all);
  let t = turns.get(ctx);
  if (!t) turns.set(ctx, (t = new Map()));
  const i = t.get(n) ?? 0;
  t.set(n, i + 1);
  return pinned[i % pinned.length]!;
}

async function leaderName(ctx: NemesisContext): Promise<string | undefined> {
  return (await ctx.cluster.leader())?.member.name;
}

/** Running voters' names, leader first if known. */
async function running(ctx: NemesisContext): Promise<{ names: string[]; leader: string | undefined }> {
  const leader = await leaderName(ctx);
  const names = ctx.cluster.live().map((m) => m.name);
  return { names, leader };
}

const minority = (n: number): number => Math.floor((n - 1) / 2);

export async function inject(name: NemesisName, ctx: NemesisContext): Promise<Fault | undefined> {
  switch (name) {
    case 'partition':
      return partition(ctx);
    case 'kill':
      return kill(ctx);
    case 'pause':
      return pause(ctx);
    case 'slow':
      return linkFault(ctx, 'slow');
    case 'lossy':
      return linkFault(ctx, 'lossy');
    case 'isolate-kill':
      return isolateKill(ctx);
    case 'disk':
      return disk(ctx);
    case 'membership':
      return undefined;
  }
}

// ------------------------------------------------------------------ partition

const PARTITION_MODES = [
  'isolate-leader',
  'halves',
  'bridge',
  'leader-out',
  'leader-in',
  'random-links',
] as const;

async function partition(ctx: NemesisContext): Promise<Fault | undefined> {
  const c = ctx.cluster;
  const p = c.proxy;
  const names = c.active().map((m) => m.name);
  if (names.length < 2) return undefined;
  const leader = (await leaderName(ctx)) ?? ctx.rng.pick(names);
  const mode = modeOf(ctx, 'partition', PARTITION_MODES);
  p.blockMode = ctx.rng.chance(0.7) ? 'refuse' : 'blackhole';
  const others = names.filter((n) => n !== leader);
  let desc: string;
  switch (mode) {
    case 'isolate-leader':
      p.partition([[leader], others]);
      desc = `${leader} | ${others.join(' ')}`;
      break;
    case 'halves': {
      const s = ctx.rng.shuffle(names);
      const k = ctx.rng.int(1, minority(names.length) || 1);
      p.partition([s.slice(0, k), s.slice(k)]);
      desc = `${s.slice(0, k).join(' ')} | ${s.slice(k).join(' ')}`;
      break;
    }
    case 'bridge': {
      // Two sides that cannot talk, and one member (the bridge) that talks to both.
      const s = ctx.rng.shuffle(names);
      const bridge = s[0]!;
      const rest = s.slice(1);
      const half = Math.ceil(rest.length / 2);
      const a = rest.slice(0, half);
      const b = rest.slice(half);
      for (const x of a) for (const y of b) p.partition([[x], [y]]);
      desc = `${a.join(' ')} <${bridge}> ${b.join(' ')}`;
      break;
    }
    case 'leader-out':
      for (const o of others) p.updateLink(leader, o, { blocked: true });
      desc = `${leader} -/-> ${others.join(' ')} (one-way: the leader cannot send)`;
      break;
    case 'leader-in':
      for (const o of others) p.updateLink(o, leader, { blocked: true });
      desc = `${others.join(' ')} -/-> ${leader} (one-way: the leader cannot hear)`;
      break;
    default: {
      const cut: string[] = [];
      for (const a of names)
        for (const b of names)
          if (a !== b && ctx.rng.chance(0.35)) {
            p.updateLink(a, b, { blocked: true });
            cut.push(`${a}->${b}`);
          }
      desc = `cut ${cut.join(' ') || 'nothing'}`;
    }
  }
  return {
    nemesis: 'partition',
    description: `partition ${mode} ${desc} (${p.blockMode})`,
    targets: names,
    heal: async () => p.heal(),
  };
}

// ------------------------------------------------------------------ kill

const KILL_MODES = ['one', 'leader', 'minority', 'majority', 'all', 'freeze-followers'] as const;

async function restartAll(ctx: NemesisContext, names: string[], last?: string): Promise<void> {
  const order = ctx.rng.shuffle(names.filter((n) => n !== last));
  if (last !== undefined && names.includes(last)) order.push(last);
  for (const [i, n] of order.entries()) {
    const m = ctx.cluster.member(n);
    if (m.state !== 'down') continue;
    // With the old leader last, give the others time to elect without it.
    if (n === last && i > 0) await sleep(Math.max(2500, 5 * ctx.electionMs));
    else if (i > 0) await sleep(ctx.rng.int(0, 800));
    ctx.cluster.start(n);
  }
}

async function kill(ctx: NemesisContext): Promise<Fault | undefined> {
  const { names, leader } = await running(ctx);
  if (names.length === 0) return undefined;
  const mode = modeOf(ctx, 'kill', KILL_MODES);
  const n = ctx.cluster.active().length;
  let victims: string[];
  switch (mode) {
    case 'one':
      victims = [ctx.rng.pick(names)];
      break;
    case 'leader':
      victims = [leader ?? ctx.rng.pick(names)];
      break;
    case 'minority':
      victims = ctx.rng.shuffle(names).slice(0, Math.max(1, minority(n)));
      break;
    case 'majority':
      victims = ctx.rng.shuffle(names).slice(0, Math.floor(n / 2) + 1);
      break;
    default:
      victims = names;
  }
  if (mode === 'freeze-followers' && leader !== undefined) {
    // Freeze every follower (whatever it was about to write stays unwritten), let the leader
    // run on alone for a moment, then crash everyone; the followers restart first and elect
    // among themselves, the old leader last. Whatever the leader committed with their
    // acknowledgements must have been on their disks.
    const followers = names.filter((x) => x !== leader);
    for (const f of followers) ctx.cluster.pause(f);
    await sleep(ctx.rng.int(200, 600));
    await Promise.all(names.map((v) => ctx.cluster.kill(v)));
    return {
      nemesis: 'kill',
      description: `kill freeze-followers: pause ${followers.join(' ')}, then kill them and the leader ${leader} (restarted last)`,
      targets: names,
      heal: () => restartAll(ctx, names, leader),
    };
  }
  const leaderLast = mode === 'all' && leader !== undefined && ctx.rng.chance(0.5);
  await Promise.all(victims.map((v) => ctx.cluster.kill(v)));
  return {
    nemesis: 'kill',
    description: `kill ${mode} ${victims.join(' ')}${leaderLast ? ` (restart the old leader ${leader} last)` : ''}`,
    targets: victims,
    heal: () => restartAll(ctx, victims, leaderLast ? leader : undefined),
  };
}

// ------------------------------------------------------------------ pause

const PAUSE_MODES = ['leader', 'one', 'minority'] as const;

async function pause(ctx: NemesisContext): Promise<Fault | undefined> {
  const { names, leader } = await running(ctx);
  if (names.length === 0) return undefined;
  const mode = modeOf(ctx, 'pause', PAUSE_MODES);
  const n = ctx.cluster.active().length;
  const victims =
    mode === 'leader' && leader !== undefined
      ? [leader]
      : mode === 'minority'
        ? ctx.rng.shuffle(names).slice(0, Math.max(1, minority(n)))
        : [ctx.rng.pick(names)];
  for (const v of victims) ctx.cluster.pause(v);
  return {
    nemesis: 'pause',
    description: `pause ${mode} ${victims.join(' ')}${victims.includes(leader ?? '') ? ' (the leader)' : ''}`,
    targets: victims,
    heal: async () => {
      for (const v of victims) ctx.cluster.resume(v);
    },
  };
}

// ------------------------------------------------------------------ slow and lossy links

async function linkFault(ctx: NemesisContext, kind: 'slow' | 'lossy'): Promise<Fault | undefined> {
  const c = ctx.cluster;
  const names = c.active().map((m) => m.name);
  if (names.length < 2) return undefined;
  const mode = modeOf(ctx, kind, LINK_MODES);
  const target = ctx.rng.pick(names);
  const fault: LinkFault =
    kind === 'slow'
      ? mode === 'all'
        ? { delayMs: ctx.rng.int(50, 200), jitterMs: ctx.rng.int(0, 50) }
        : { delayMs: ctx.rng.int(300, 800), jitterMs: ctx.rng.int(0, 100) }
      : { resetProbability: ctx.rng.range(0.01, mode === 'all' ? 0.05 : 0.2) };
  for (const a of names) {
    for (const b of names) {
      if (a === b || (mode === 'one' && a !== target && b !== target)) continue;
      c.proxy.updateLink(a, b, fault);
    }
  }
  const what =
    kind === 'slow'
      ? `delay ${fault.delayMs}±${fault.jitterMs} ms`
      : `reset p=${fault.resetProbability!.toFixed(3)}/chunk`;
  return {
    nemesis: kind,
    description: `${kind} ${mode === 'all' ? 'all links' : `links of ${target}`}: ${what}`,
    targets: mode === 'all' ? names : [target],
    heal: async () => c.proxy.heal(),
  };
}

// ------------------------------------------------------------------ isolate a follower, then kill the leader

async function isolateKill(ctx: NemesisContext): Promise<Fault | undefined> {
  const c = ctx.cluster;
  const { names, leader } = await running(ctx);
  if (leader === undefined) return undefined;
  const followers = names.filter((n) => n !== leader);
  if (followers.length === 0) return undefined;
  const stale = ctx.rng.pick(followers);
  // `isolate`: the follower is cut off both ways. `starve`: only the leader's messages to it
  // are cut, so it falls behind but its own links stay up (no reconnect back-off when the
  // leader dies, so it is quick to ask for votes). `stall`: starve it, and when the leader
  // dies, freeze the up-to-date followers just as their leader lease runs out (a GC pause, a
  // stalled disk), long enough for the stale one to ask for their votes: they answer it as
  // soon as they wake, before their own election timers fire.
  const mode = modeOf(ctx, 'isolate-kill', ISOLATE_KILL_MODES);
  c.proxy.blockMode = 'refuse';
  if (mode === 'isolate')
    c.proxy.partition([
      [stale],
      c
        .active()
        .map((m) => m.name)
        .filter((n) => n !== stale),
    ]);
  else c.proxy.updateLink(leader, stale, { blocked: true });
  const upToDate = followers.filter((f) => f !== stale);
  return {
    nemesis: 'isolate-kill',
    description: `isolate-kill ${mode}: ${mode === 'isolate' ? 'isolate' : 'starve'} follower ${stale}, then kill leader ${leader} and heal${mode === 'stall' ? `, stalling ${upToDate.join(' ')} as their lease ends` : ''}`,
    targets: [stale, leader],
    heal: async () => {
      await c.kill(leader);
      c.proxy.heal();
      if (mode === 'stall') {
        await sleep(ctx.electionMs + 20);
        for (const f of upToDate) c.pause(f);
        await sleep(2 * ctx.electionMs + 300);
        for (const f of upToDate) c.resume(f);
      }
      await sleep(2500);
      if (c.member(leader).state === 'down') c.start(leader);
    },
  };
}

// ------------------------------------------------------------------ disk full

async function disk(ctx: NemesisContext): Promise<Fault | undefined> {
  const c = ctx.cluster;
  const m = c.members.find((x) => x.disk !== undefined && x.state === 'running');
  if (!m) return undefined;
  const exitsBefore = m.exits.length;
  const filledAt = ctx.now();
  c.fillDisk(m.name);
  const fault: Fault = {
    nemesis: 'disk',
    description: `disk full on ${m.name} (${m.disk})`,
    targets: [m.name],
    findings: [],
    notes: [],
    heal: async () => {
      const stopped = m.exits.length > exitsBefore;
      if (!stopped) {
        fault.notes!.push(`${m.name} did not stop while its disk was full (it needed no new space)`);
        if (m.disk === 'inject')
          fault.findings!.push(`${m.name} kept running although every write failed with ENOSPC`);
        await c.kill(m.name);
      }
      c.freeDisk(m.name);
      if (m.state === 'down') c.start(m.name);
    },
  };
  // A full disk bites at the next write that needs space; a new term makes every member write
  // its hard state (a new file, atomically renamed).
  await forceNewTerm(ctx, m);
  const deadline = performance.now() + 5000;
  while (m.exits.length === exitsBefore && performance.now() < deadline) await sleep(50);
  const e = m.exits[exitsBefore];
  if (e) {
    fault.notes!.push(
      `${m.name} stopped ${Math.round(e.at - filledAt)} ms after its disk filled, exit code ${e.code}`,
    );
    if (e.code === 0 || e.code === null) {
      fault.findings!.push(
        `${m.name} stopped on a full disk with exit code ${e.code} (${e.signal ?? ''}); expected a non-zero exit`,
      );
    }
    if (!m.log.some((l) => /fatal|STORAGE_FAILED|ENOSPC/.test(l)))
      fault.findings!.push(`${m.name} stopped on a full disk without logging why`);
  }
  return fault;
}

/** Transfers leadership to some running voter, which starts a new term everywhere. */
async function forceNewTerm(ctx: NemesisContext, prefer: FaultMember): Promise<void> {
  const c = ctx.cluster;
  const l = await c.leader();
  if (!l) return;
  const candidates = c.live().filter((m) => m.name !== l.member.name);
  const voters = new Set(l.view.members.filter((m) => m.role === 'voter').map((m) => m.name));
  // Not to the member whose disk is full: it would fail before it could win.
  const to =
    candidates.find((m) => m !== prefer && voters.has(m.name)) ?? candidates.find((m) => voters.has(m.name));
  if (!to) return;
  const kv = new KvClient({ endpoints: [l.member.clientUrl], timeoutMs: 3000, deadlineMs: 4000 });
  try {
    await kv.transferLeader(to.name);
  } catch (e) {
    ctx.log(`transfer to ${to.name} for a new term: ${(e as Error).message}`);
  } finally {
    kv.close();
  }
}

const LINK_MODES = ['all', 'one'] as const;
const ISOLATE_KILL_MODES = ['isolate', 'starve', 'stall'] as const;

/** The modes each nemesis picks from (`--mode NEMESIS=MODE/MODE` pins some, used in turn). */
export const MODES: Readonly<Record<NemesisName, readonly string[]>> = {
  partition: PARTITION_MODES,
  kill: KILL_MODES,
  pause: PAUSE_MODES,
  slow: LINK_MODES,
  lossy: LINK_MODES,
  'isolate-kill': ISOLATE_KILL_MODES,
  disk: [],
  membership: [],
};

// ------------------------------------------------------------------ membership (background)

/** One membership change, as the report shows it. */
export interface MembershipEvent {
  at: number;
  done: number;
  description: string;
  outcome: 'ok' | 'failed' | 'unknown';
}

/**
 * Alternates between adding a fresh member (as a voter) and removing a random voter, one
 * change at a time, every few seconds, whatever else is going on. Stops when `stop()` says so.
 */
export async function membershipLoop(
  ctx: NemesisContext,
  stop: () => boolean,
  events: MembershipEvent[],
  periodMs: readonly [number, number] = [2000, 5000],
): Promise<void> {
  const c = ctx.cluster;
  const base = c.members.filter((m) => m.founder).length;
  const protectedNames = new Set(c.members.filter((m) => m.disk !== undefined).map((m) => m.name));
  while (!stop()) {
    await sleep(ctx.rng.int(periodMs[0], periodMs[1]));
    if (stop()) break;
    const voters = await currentVoters(ctx);
    if (!voters) continue;
    const at = ctx.now();
    const endpoints = c.live().map((m) => m.clientUrl);
    if (endpoints.length === 0) continue;
    const kv = new KvClient({ endpoints, timeoutMs: 3000, deadlineMs: 20_000 });
    try {
      if (voters.length <= base) {
        const j = await c.prepareJoiner();
        let outcome: MembershipEvent['outcome'] = 'ok';
        let why = '';
        const add = kv
          .addMember(j.name, j.inboundPeerUrl, { clientUrl: j.advertisedClientUrl, role: 'voter' })
          .catch((e: Error & { code?: string }) => {
            outcome = e.code === 'TIMEOUT' || e.code === 'CATCH_UP_TIMEOUT' ? 'unknown' : 'failed';
            why = ` (${e.code ?? e.message})`;
            ctx.log(`add ${j.name}: ${e.message}`);
          });
        c.start(j.name);
        await add;
        const after = await currentVoters(ctx, 10_000);
        const member = after?.includes(j.name) || (await isMember(ctx, j.name));
        if (!member) await c.retire(j.name);
        events.push({
          at,
          done: ctx.now(),
          description: `add ${j.name}${why}${member ? '' : ', not a member: stopped'}`,
          outcome,
        });
      } else {
        const removable = voters.filter((v) => !protectedNames.has(v));
        if (removable.length === 0) continue;
        const victim = ctx.rng.pick(removable);
        let outcome: MembershipEvent['outcome'] = 'ok';
        let why = '';
        await kv.removeMember(victim).catch((e: Error & { code?: string }) => {
          outcome = e.code === 'TIMEOUT' ? 'unknown' : 'failed';
          why = ` (${e.code ?? e.message})`;
          ctx.log(`remove ${victim}: ${e.message}`);
        });
        const still = await isMember(ctx, victim);
        if (!still) await c.retire(victim);
        events.push({
          at,
          done: ctx.now(),
          description: `remove ${victim}${why}${still ? ', still a member' : ''}`,
          outcome,
        });
      }
    } finally {
      kv.close();
    }
  }
}

/** The voters the leader reports, retried up to `waitMs`. */
async function currentVoters(ctx: NemesisContext, waitMs = 3000): Promise<string[] | undefined> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const l = await ctx.cluster.leader();
    if (l) return l.view.members.filter((m) => m.role === 'voter').map((m) => m.name);
    if (performance.now() > deadline) return undefined;
    await sleep(100);
  }
}

/** Whether the leader lists `name` (as voter or learner); when no leader answers: assume yes. */
async function isMember(ctx: NemesisContext, name: string): Promise<boolean> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const l = await ctx.cluster.leader();
    if (l) return l.view.members.some((m) => m.name === name);
    if (performance.now() > deadline) return true;
    await sleep(100);
  }
}

/**
 * After the final heal: every member the leader lists runs, every member it does not list is
 * stopped (changes whose outcome was unknown may have landed either way).
 */
export async function reconcileMembership(ctx: NemesisContext): Promise<void> {
  const c = ctx.cluster;
  const deadline = performance.now() + 10_000;
  let l = await c.leader();
  while (!l && performance.now() < deadline) {
    await sleep(100);
    l = await c.leader();
  }
  if (!l) return;
  const listed = new Set(l.view.members.map((m) => m.name));
  for (const m of c.members) {
    if (m.state === 'new') continue;
    if (listed.has(m.name) && (m.state === 'removed' || m.state === 'down')) {
      ctx.log(`reconcile: ${m.name} is a member: starting it`);
      m.state = 'down';
      c.start(m.name);
    } else if (!listed.has(m.name) && m.state !== 'removed') {
      ctx.log(`reconcile: ${m.name} is not a member: stopping it`);
      await c.retire(m.name);
    }
  }
}
