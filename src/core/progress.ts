import type { Index } from './messages.js';

/**
 * How the leader currently replicates to one follower:
 * - `probe`: we do not know where its log matches; send one append per heartbeat interval
 *   and wait for the answer (fast backtracking narrows it down).
 * - `replicate`: the follower matches; stream appends optimistically (pipelining) within
 *   the in-flight window.
 * - `snapshot`: the entries it needs were compacted; a snapshot is on its way.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * A bounded window of in-flight append messages (their last index and byte size), so a
 * leader never has more than `maxCount` messages or `maxBytes` bytes outstanding to one
 * follower (flow control). A ring buffer: adds and frees are O(1) amortized.
 */
export class Inflights {
  private idx: Index[] = [];
  private sizes: number[] = [];
  private start = 0;
  private count = 0;
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  /** True when no more messages may be sent. */
  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  get length(): number {
    return this.count;
  }

  /** Records a message whose last entry is `last` carrying `bytes`. Invariant: indexes grow. */
  add(last: Index, bytes: number): void {
    const cap = this.idx.length;
    if (this.count === cap) this.grow();
    const pos = (this.start + this.count) % this.idx.length;
    this.idx[pos] = last;
    this.sizes[pos] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  private grow(): void {
    const newCap = Math.max(4, this.idx.length * 2);
    const idx: Index[] = new Array<Index>(newCap);
    const sizes: number[] = new Array<number>(newCap);
    for (let i = 0; i < this.count; i++) {
      const p = (this.start + i) % this.idx.length;
      idx[i] = this.idx[p]!;
      sizes[i] = this.sizes[p]!;
    }
    this.idx = idx;
    this.sizes = sizes;
    this.start = 0;
  }

  /** Frees every message whose last index is at or below `to` (acknowledged). */
  freeLE(to: Index): void {
    while (this.count > 0) {
      const p = this.start;
      if (this.idx[p]! > to) break;
      this.bytes -= this.sizes[p]!;
      this.start = (this.start + 1) % this.idx.length;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message (a heartbeat answer suggests the window is stuck on a lost one). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.idx[this.start]!);
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

/**
 * The leader's view of one peer (Figure 2's nextIndex/matchIndex, plus flow control).
 * Invariant: `match < next`.
 */
export class Progress {
  /** Highest index known replicated on the peer. */
  match: Index = 0;
  /** Index of the next entry to send. */
  next: Index;
  state: ProgressState = 'probe';
  /** In `probe` state: an append was sent and we wait for its answer or the next heartbeat. */
  probeSent = false;
  /** In `snapshot` state: the index of the snapshot being sent. */
  pendingSnapshot: Index = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** The highest heartbeat round (read-only.ts) this peer acknowledged. */
  ackedRound = 0;
  /** The highest commit index this peer was told (capped at what each message covered). */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(
    next: Index,
    public isLearner: boolean,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * Records that an append ending at `last` with `bytes` went out. In replicate state the
   * next index advances optimistically (pipelining); in probe state we pause until answered.
   */
  sentEntries(count: number, last: Index, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflights.add(last, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** The peer acknowledged up to `n`. Returns whether match moved ("maybe" does nothing if stale). */
  maybeUpdate(n: Index): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The peer rejected an append at `rejected`; `matchHint` is the highest index that may
   * match. Returns false if the rejection is stale (from an earlier round) and was ignored.
   */
  maybeDecrTo(rejected: Index, matchHint: Index): boolean {
    if (this.state === 'replicate') {
      // Stale if we already know it matches beyond the rejected index.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe state: only the answer to our latest probe (next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** True when the leader must not send more appends to this peer now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
