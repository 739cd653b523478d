import type { Index, NodeId } from './messages.js';

/** The outcome of counting votes. */
export type VoteResult = 'won' | 'lost' | 'pending';

/** Scratch space for {@link majorityIndex} (reused: it runs on every append acknowledgement). */
let scratch = new Float64Array(16);

/**
 * The largest value that a majority of `voters` has reached, given each voter's value
 * (e.g. match index: §5.3 "a majority of matchIndex[i] ≥ N"). An empty configuration
 * returns +Infinity so that it never holds back a joint configuration's minimum.
 */
export function majorityIndex(voters: readonly NodeId[], valueOf: (id: NodeId) => number): Index {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  if (n === 1) return valueOf(voters[0]!);
  // Insertion sort, high to low, without allocating; voter sets are small.
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
  const values = scratch;
  for (let i = 0; i < n; i++) {
    const v = valueOf(voters[i]!);
    let j = i;
    while (j > 0 && values[j - 1]! < v) {
      values[j] = values[j - 1]!;
      j--;
    }
    values[j] = v;
  }
  // With values sorted high to low, the (⌊n/2⌋+1)-th is held by a majority.
  return values[n >> 1]!;
}

/**
 * The value both majorities of a joint configuration have reached (§6: agreement needs
 * separate majorities of C_old and C_new).
 */
export function jointIndex(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  valueOf: (id: NodeId) => number,
): Index {
  const v = Math.min(majorityIndex(incoming, valueOf), majorityIndex(outgoing, valueOf));
  // Both empty: nothing is agreed.
  return v === Number.POSITIVE_INFINITY ? 0 : v;
}

/** Counts votes in one majority configuration; `votes` maps voter → granted. */
export function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won'; // an empty config never blocks a joint decision
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = (voters.length >> 1) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** Counts votes in a joint configuration: won only if both win, lost if either loses. */
export function jointVote(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const a = majorityVote(incoming, votes);
  const b = majorityVote(outgoing, votes);
  if (a === b) return a;
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}
