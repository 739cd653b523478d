import type { Index, NodeId } from './messages.js';

/** A read waiting for its leadership-confirmation round. */
export interface PendingRead {
  readonly context: Uint8Array;
  /** The leader's commit index when the read arrived: the read is served at or after it. */
  readonly index: Index;
  /** The first heartbeat round started after the read arrived; its confirmation serves the read. */
  readonly round: number;
  /** Who asked (this node, or a follower that forwarded the request). */
  readonly from: NodeId;
}

/**
 * Leadership confirmation for linearizable reads (§8 ReadIndex) and leases.
 *
 * Every heartbeat broadcast is a numbered *round*; the heartbeat's context carries the round
 * number and followers echo it. A round is confirmed when a quorum acknowledged it (or a
 * later one). A read that arrives while round k is in flight waits for round k+1: only a
 * round started after the read proves we were still leader when it arrived. Reads that
 * arrive together share a round, so read load adds few messages.
 *
 * The lease: a follower that acknowledged round q received it after q started, and ignores
 * vote requests for an election timeout after that (the §6 minimum-election-timeout rule),
 * so no other leader can be elected until `start(q) + electionTicks` in that follower's
 * ticks. The leader serves lease reads until `start(q) + electionTicks - leaseMarginTicks`
 * in its own ticks: safe while no server's tick rate exceeds the leader's by more than the
 * margin over one election timeout (the clock assumption, see config.ts).
 */
export class ReadOnly {
  /** The newest round started. */
  round = 0;
  /** The newest round a quorum confirmed. */
  confirmed = 0;
  /** Tick at which the confirmed round started; -Infinity when none this term. */
  confirmedStart = Number.NEGATIVE_INFINITY;
  /** A read is waiting for a round later than the one in flight. */
  wantRound = false;
  /**
   * The newest round's heartbeats have not left yet (they are still in the batch being built):
   * a read arriving now may join it, since the followers will answer messages sent after it.
   */
  open = false;
  readonly pending: PendingRead[] = [];
  private readonly starts = new Map<number, number>();

  /** Forgets everything (a new term, or no longer leader). Round numbers keep growing. */
  reset(): void {
    this.confirmed = this.round;
    this.confirmedStart = Number.NEGATIVE_INFINITY;
    this.wantRound = false;
    this.open = false;
    this.pending.length = 0;
    this.starts.clear();
  }

  /** True while an unconfirmed round is outstanding. */
  inFlight(): boolean {
    return this.round > this.confirmed;
  }

  /** Starts a new round at tick `now`; returns its number (the heartbeat context). */
  startRound(now: number): number {
    this.round++;
    this.starts.set(this.round, now);
    this.wantRound = false;
    this.open = true;
    return this.round;
  }

  /** Queues a read that needs a round started after now. Returns true if a round must start now. */
  add(read: Omit<PendingRead, 'round'>): boolean {
    if (this.open && this.inFlight()) {
      this.pending.push({ ...read, round: this.round });
      return false;
    }
    this.pending.push({ ...read, round: this.round + 1 });
    if (this.inFlight()) {
      this.wantRound = true;
      return false;
    }
    return true;
  }

  /**
   * A quorum has acknowledged rounds up to `q`: returns the reads it serves, oldest first.
   * Idempotent for stale `q`.
   */
  confirm(q: number): PendingRead[] {
    if (q <= this.confirmed) return [];
    this.confirmed = q;
    const start = this.starts.get(q);
    if (start !== undefined) this.confirmedStart = start;
    for (const k of [...this.starts.keys()]) if (k <= q) this.starts.delete(k);
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.round <= q) n++;
    return n === 0 ? [] : this.pending.splice(0, n);
  }
}

/** Encodes a round number as a heartbeat context. */
export function encodeRound(round: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, round);
  return b;
}

/** Decodes a heartbeat context into a round number (0 when absent or malformed). */
export function decodeRound(ctx: Uint8Array): number {
  if (ctx.byteLength !== 8) return 0;
  const v = new DataView(ctx.buffer, ctx.byteOffset, 8).getFloat64(0);
  return Number.isSafeInteger(v) && v > 0 ? v : 0;
}
