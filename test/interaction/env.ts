import type { RaftConfig } from '../../src/core/config.js';
import { describeConf } from '../../src/core/describe.js';
import type {
  ConfChangeItem,
  ConfChangeOp,
  ConfState,
  Entry,
  NodeId,
  Snapshot,
} from '../../src/core/messages.js';
import { RaftError } from '../../src/errors.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { Cluster } from '../support/cluster.js';
import type { Command } from '../support/datadriven.js';

/**
 * The command interpreter of the interaction transcripts (STYLE.md convention 11): each
 * command drives a hand-stepped {@link Cluster} and answers with what happened, in the
 * compact text forms of describe.ts. Nodes are named `n1`, `n2`, ...
 *
 * Messages are printed when a node's Ready is processed (that is when they are "sent");
 * a partition or cut in force at that moment drops them (`DROPPED`). Messages already
 * queued in an inbox are not affected by a later partition.
 *
 * Commands (see {@link InteractionEnv.handle} for the full list):
 * - `add-nodes N [prevote=] [checkquorum=] [election=] [heartbeat=] [max-inflight=]
 *   [max-msg-bytes=] [max-uncommitted=] [lease-margin=] [forward=] [learners=n4,n5]`
 * - `reset` (forget the cluster, to start another scenario in the same file)
 * - `set-log n2 terms=1,1,4 [term=T] [vote=n1] [commit=C]` (recreate n2 from a storage
 *   holding those entries and that hard state; entries carry the data "x")
 * - `campaign n1`, `tick n1 [count]`, `tick-all [count]`, `tick-until-leader [max=100]`,
 *   `stabilize`
 * - `process-ready n1 [n2 ...]`, `deliver n2 [count=k]`, `drop n2`
 * - `propose n1 data`, `propose-conf n1 add-voter n4 [remove n2 ...] [joint=true]`
 * - `read-index n1 ctx [lease]`, `transfer-leadership n1 n2`
 * - `partition n1 | n2 n3`, `isolate n1`, `cut n1 n2` (one way), `heal`, `restart n2`
 * - `raft-state`, `raft-log n2 [n3 ...]`, `log-terms [n1 ...]`, `status n1`
 *
 * A {@link RaftError} thrown by a command prints as `error: CODE message`.
 */
export class InteractionEnv {
  readonly cluster = new Cluster();
  /** The membership every node of the cluster starts with. */
  private conf: ConfState = { voters: [], outgoing: [], learners: [], learnersNext: [] };

  handle(c: Command): string {
    const extra: string[] = [];
    try {
      this.run(c, extra);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
      extra.push(`error: ${e.code} ${e.message}`);
    }
    const traffic = this.cluster.flush();
    return [traffic, ...extra].filter((s) => s !== '').join('\n');
  }

  private run(c: Command, out: string[]): void {
    const cl = this.cluster;
    switch (c.name) {
      case 'add-nodes':
        this.addNodes(c, out);
        return;
      case 'reset':
        cl.clear();
        this.conf = { voters: [], outgoing: [], learners: [], learnersNext: [] };
        return;
      case 'set-log':
        this.setLog(c, out);
        return;
      case 'campaign':
        cl.node(arg(c, 0)).rn.campaign();
        return;
      case 'tick':
        cl.tick(arg(c, 0), count(c, 1));
        return;
      case 'tick-all':
        cl.tickAll(count(c, 0));
        return;
      case 'tick-until-leader':
        out.push(this.tickUntilLeader(c));
        return;
      case 'stabilize':
        cl.stabilize();
        return;
      case 'process-ready':
        for (const id of ids(c)) cl.processReady(id);
        return;
      case 'deliver': {
        const k = c.kv.get('count');
        for (const id of ids(c)) {
          if (k === undefined) cl.deliver(id);
          else cl.deliverSome(id, intArg(c, 'count', k));
        }
        return;
      }
      case 'drop':
        for (const id of ids(c)) cl.dropInbox(id);
        return;
      case 'propose': {
        const id = arg(c, 0);
        const p = cl.node(id).rn.propose(new TextEncoder().encode(arg(c, 1)));
        out.push(p ? `proposed ${p.term}/${p.index}` : `forwarded to ${cl.node(id).rn.raft.leader ?? '-'}`);
        return;
      }
      case 'propose-conf': {
        const id = arg(c, 0);
        const items: ConfChangeItem[] = [];
        for (let i = 1; i < c.args.length; i += 2) {
          const op = c.args[i] as ConfChangeOp;
          if (op !== 'add-voter' && op !== 'add-learner' && op !== 'remove') {
            throw new Error(`${c.pos}: unknown membership op ${op}`);
          }
          items.push({ op, node: arg(c, i + 1) });
        }
        const p = cl.node(id).rn.proposeConfChange({
          changes: items,
          ...(c.kv.get('joint') === 'true' ? { joint: true } : {}),
        });
        out.push(p ? `proposed ${p.term}/${p.index}` : `forwarded to ${cl.node(id).rn.raft.leader ?? '-'}`);
        return;
      }
      case 'read-index':
        cl.node(arg(c, 0)).rn.readIndex(new TextEncoder().encode(arg(c, 1)), {
          lease: c.args[2] === 'lease',
        });
        return;
      case 'transfer-leadership':
        cl.node(arg(c, 0)).rn.transferLeadership(arg(c, 1));
        return;
      case 'partition': {
        const groups: NodeId[][] = [[]];
        for (const a of c.args) {
          if (a === '|') groups.push([]);
          else groups[groups.length - 1]!.push(a);
        }
        cl.partition(groups);
        return;
      }
      case 'isolate':
        cl.isolate(arg(c, 0));
        return;
      case 'cut':
        cl.cutOneWay(arg(c, 0), arg(c, 1));
        return;
      case 'heal':
        cl.heal();
        return;
      case 'restart':
        cl.restart(arg(c, 0));
        out.push(this.stateLine(arg(c, 0)));
        return;
      case 'raft-state':
        out.push(cl.state());
        return;
      case 'raft-log':
        for (const id of ids(c)) {
          if (c.args.length > 1) out.push(`${id}:`);
          out.push(cl.log(id));
        }
        return;
      case 'log-terms': {
        const which = c.args.length > 0 ? c.args : [...cl.nodes.keys()];
        for (const id of which) out.push(this.logTerms(id));
        return;
      }
      case 'status':
        out.push(this.status(arg(c, 0)));
        return;
      default:
        throw new Error(`${c.pos}: unknown command ${c.name}`);
    }
  }

  /**
   * Ticks every node (stabilizing after each round) until a leader is elected in a term
   * above every term a leader held when the command started; at most `max` rounds.
   */
  private tickUntilLeader(c: Command): string {
    const max = c.kv.has('max') ? intArg(c, 'max', c.kv.get('max')!) : 100;
    const cl = this.cluster;
    const termNow = (): number => {
      let t = -1;
      for (const n of cl.nodes.values()) if (n.rn.raft.role === 'leader') t = Math.max(t, n.rn.raft.term);
      return t;
    };
    const before = termNow();
    for (let i = 1; i <= max; i++) {
      cl.tickAll(1);
      const t = termNow();
      if (t > before) {
        const l = [...cl.nodes.values()].find((n) => n.rn.raft.role === 'leader' && n.rn.raft.term === t)!;
        return `${l.id} is leader of term ${t} after ${i} ticks`;
      }
    }
    return `no new leader after ${max} ticks`;
  }

  private addNodes(c: Command, out: string[]): void {
    const n = intArg(c, 'count', arg(c, 0));
    const cfg = configFrom(c);
    const learners = (c.kv.get('learners') ?? '').split(',').filter((s) => s !== '');
    const first = this.cluster.nodes.size + 1;
    const names: NodeId[] = [];
    for (let i = first; i < first + n; i++) names.push(`n${i}`);
    if (this.cluster.nodes.size === 0) {
      this.conf = {
        voters: names.filter((x) => !learners.includes(x)),
        outgoing: [],
        learners,
        learnersNext: [],
      };
    }
    // Nodes added to a running cluster start with an empty configuration: they learn their
    // membership from the log (or a snapshot) once a leader adds them.
    const conf: ConfState =
      first === 1 ? this.conf : { voters: [], outgoing: [], learners: [], learnersNext: [] };
    for (const id of names) {
      this.cluster.add(id, [...conf.voters], cfg, new MemoryStorage({ snapshot: bootSnapshot(conf) }));
      out.push(this.stateLine(id));
    }
  }

  private setLog(c: Command, out: string[]): void {
    const id = arg(c, 0);
    const old = this.cluster.node(id);
    const terms = (c.kv.get('terms') ?? '')
      .split(',')
      .filter((s) => s !== '')
      .map((t) => intArg(c, 'terms', t));
    const data = new TextEncoder().encode('x');
    const entries: Entry[] = terms.map((term, i) => ({ term, index: i + 1, type: 'normal', data }));
    const lastTerm = terms[terms.length - 1] ?? 0;
    const term = c.kv.has('term') ? intArg(c, 'term', c.kv.get('term')!) : lastTerm;
    const commit = c.kv.has('commit') ? intArg(c, 'commit', c.kv.get('commit')!) : 0;
    const storage = new MemoryStorage({
      snapshot: bootSnapshot(this.conf),
      entries,
      hardState: { term, vote: c.kv.get('vote'), commit },
    });
    this.cluster.add(id, [...this.conf.voters], old.cfg, storage);
    out.push(this.stateLine(id));
    out.push(this.logTerms(id));
  }

  private stateLine(id: NodeId): string {
    const s = this.cluster.node(id).rn.status();
    return (
      `${s.id} ${s.role} term=${s.term} vote=${s.vote ?? '-'} commit=${s.commit} last=${s.lastIndex} ` +
      describeConf(s.conf)
    );
  }

  /** `n2 terms=1,1,1,4 commit=2` */
  private logTerms(id: NodeId): string {
    const l = this.cluster.node(id).rn.raft.log;
    const terms: number[] = [];
    for (let i = l.firstIndex(); i <= l.lastIndex(); i++) terms.push(l.term(i) ?? -1);
    const snap = l.firstIndex() > 1 ? ` (snapshot ${l.firstIndex() - 1})` : '';
    return `${id} terms=${terms.join(',')}${snap} commit=${l.committed}`;
  }

  private status(id: NodeId): string {
    const rn = this.cluster.node(id).rn;
    const s = rn.status();
    const lines = [
      `${s.id} ${s.role} term=${s.term} vote=${s.vote ?? '-'} leader=${s.leader ?? '-'} commit=${s.commit} ` +
        `applied=${s.applied} last=${s.lastIndex} ${describeConf(s.conf)}`,
    ];
    if (s.role === 'leader') {
      const r = rn.raft;
      lines.push(
        `  tick=${r.now} transferee=${s.leadTransferee ?? '-'} lease=${r.leaseValid() ? 'valid' : 'none'} ` +
          `uncommitted=${r.uncommittedSize}B`,
      );
    }
    if (s.progress) {
      for (const [peer, p] of s.progress) {
        lines.push(
          `  ${peer}: match=${p.match} next=${p.next} ${p.state}${p.isLearner ? ' learner' : ''}` +
            (p.inflight > 0 ? ` inflight=${p.inflight}` : ''),
        );
      }
    }
    return lines.join('\n');
  }
}

/** The empty snapshot (index 0) a fresh storage starts from, carrying the initial membership. */
function bootSnapshot(conf: ConfState): Snapshot {
  return { meta: { index: 0, term: 0, conf: { ...conf } }, data: new Uint8Array(0) };
}

/** The positional argument `i`, which must be present. */
function arg(c: Command, i: number): string {
  const a = c.args[i];
  if (a === undefined) throw new Error(`${c.pos}: ${c.name} needs argument ${i + 1}`);
  return a;
}

/** Every positional argument as a node name (at least one). */
function ids(c: Command): readonly string[] {
  if (c.args.length === 0) throw new Error(`${c.pos}: ${c.name} needs a node`);
  return c.args;
}

function intArg(c: Command, name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${c.pos}: ${name} must be a non-negative integer`);
  return n;
}

/** The optional count at positional argument `i` (default 1). */
function count(c: Command, i: number): number {
  const v = c.args[i];
  return v === undefined ? 1 : intArg(c, 'count', v);
}

function boolArg(c: Command, key: string): boolean | undefined {
  const v = c.kv.get(key);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw new Error(`${c.pos}: ${key} must be true or false`);
  return v === 'true';
}

type NodeConfig = Omit<RaftConfig, 'storage' | 'id'>;

/** The core configuration named by `add-nodes` options; unnamed ones keep the core defaults. */
function configFrom(c: Command): NodeConfig {
  const cfg: { -readonly [K in keyof NodeConfig]: NodeConfig[K] } = {};
  const ints: [
    string,
    (
      | 'electionTicks'
      | 'heartbeatTicks'
      | 'maxInflightMsgs'
      | 'maxSizePerMsg'
      | 'maxUncommittedBytes'
      | 'leaseMarginTicks'
    ),
  ][] = [
    ['election', 'electionTicks'],
    ['heartbeat', 'heartbeatTicks'],
    ['max-inflight', 'maxInflightMsgs'],
    ['max-msg-bytes', 'maxSizePerMsg'],
    ['max-uncommitted', 'maxUncommittedBytes'],
    ['lease-margin', 'leaseMarginTicks'],
  ];
  for (const [key, field] of ints) {
    const v = c.kv.get(key);
    if (v !== undefined) cfg[field] = intArg(c, key, v);
  }
  const bools: [string, 'preVote' | 'checkQuorum' | 'forwardProposals'][] = [
    ['prevote', 'preVote'],
    ['checkquorum', 'checkQuorum'],
    ['forward', 'forwardProposals'],
  ];
  for (const [key, field] of bools) {
    const v = boolArg(c, key);
    if (v !== undefined) cfg[field] = v;
  }
  const known = new Set(['learners', ...ints.map(([k]) => k), ...bools.map(([k]) => k)]);
  for (const k of c.kv.keys()) if (!known.has(k)) throw new Error(`${c.pos}: unknown option ${k}`);
  return cfg;
}
