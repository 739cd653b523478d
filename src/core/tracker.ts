import { allMembers } from './membership.js';
import type { ConfState, Index, NodeId } from './messages.js';
import { Progress } from './progress.js';
import { jointIndex, jointVote, type VoteResult } from './quorum.js';

/**
 * The leader's (and candidate's) view of the cluster: the active configuration, one
 * {@link Progress} per member, and the votes of the current election.
 */
export class ProgressTracker {
  conf: ConfState;
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(
    conf: ConfState,
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {
    this.conf = conf;
  }

  /** Replaces the configuration, creating progress for new members (next = `next`) and dropping removed ones. */
  setConf(conf: ConfState, next: Index): void {
    this.conf = conf;
    const members = new Set(allMembers(conf));
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const learner = !conf.voters.includes(id) && !conf.outgoing.includes(id);
      const p = this.progress.get(id);
      if (p) p.isLearner = learner;
      else {
        const np = new Progress(next, learner, this.maxInflight, this.maxInflightBytes);
        // A new member counts as active so that adding it cannot trip CheckQuorum at once.
        np.recentActive = true;
        this.progress.set(id, np);
      }
    }
  }

  /** True when `id` votes in the current configuration. */
  isVoter(id: NodeId): boolean {
    return this.conf.voters.includes(id) || this.conf.outgoing.includes(id);
  }

  /** Every voter of either half. */
  voterIds(): NodeId[] {
    return allMembers({
      voters: this.conf.voters,
      outgoing: this.conf.outgoing,
      learners: [],
      learnersNext: [],
    });
  }

  /** §5.3/§6: the highest index replicated on a majority (of both halves when joint). */
  committed(): Index {
    return jointIndex(this.conf.voters, this.conf.outgoing, (id) => this.progress.get(id)?.match ?? 0);
  }

  /** The highest heartbeat round acknowledged by a majority (of both halves when joint). */
  quorumRound(selfId: NodeId, currentRound: number): number {
    return jointIndex(this.conf.voters, this.conf.outgoing, (id) =>
      id === selfId ? currentRound : (this.progress.get(id)?.ackedRound ?? 0),
    );
  }

  /** True when the voters heard from since the last check form a quorum (CheckQuorum). */
  quorumActive(selfId: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of this.voterIds()) {
      votes.set(id, id === selfId || (this.progress.get(id)?.recentActive ?? false));
    }
    return jointVote(this.conf.voters, this.conf.outgoing, votes) === 'won';
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote (the first answer from a voter counts; later duplicates are ignored). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** The election's outcome so far. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voterIds()) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: jointVote(this.conf.voters, this.conf.outgoing, this.votes) };
  }

  /** Every member except `self`, in a stable order. */
  peers(self: NodeId): NodeId[] {
    const out: NodeId[] = [];
    for (const id of this.progress.keys()) if (id !== self) out.push(id);
    return out;
  }
}
