import { isRaftError } from '../errors.js';
import { entrySize, type AppRespMsg, type Entry, type Index, type NodeId } from './messages.js';
import type { Raft } from './raft.js';
import { encodeRound } from './read-only.js';

/**
 * Leader-side log replication (§5.3): AppendEntries with pipelining and flow control,
 * fast backtracking on rejection, snapshots for followers behind the compacted log,
 * heartbeats (which double as ReadIndex confirmation rounds), and TimeoutNow.
 */

/**
 * Sends the next append to `to` if its progress allows. With `sendIfEmpty` false an append
 * with no entries is not sent. Returns whether a message went out.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.tracker.progress.get(to);
  if (!pr || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  let ents: Entry[] | undefined;
  const last = r.log.lastIndex();
  if (pr.next <= last) {
    try {
      ents = r.log.slice(pr.next, last + 1, r.cfg.maxSizePerMsg);
    } catch (e) {
      if (!isRaftError(e, 'COMPACTED') && !isRaftError(e, 'UNAVAILABLE')) throw e;
      ents = undefined;
    }
  } else {
    ents = [];
  }
  if (prevTerm === undefined || ents === undefined) return sendSnapshot(r, to);
  if (ents.length === 0 && !sendIfEmpty) return false;
  let bytes = 0;
  for (const e of ents) bytes += entrySize(e);
  r.send({
    type: 'app',
    from: r.id,
    to,
    term: r.term,
    prevIndex,
    prevTerm,
    entries: ents,
    commit: r.log.committed,
  });
  pr.sentEntries(ents.length, prevIndex + ents.length, bytes);
  pr.sentCommit = Math.max(pr.sentCommit, Math.min(r.log.committed, prevIndex + ents.length));
  return true;
}

/** §7: the entries `to` needs are compacted; send the snapshot instead. */
function sendSnapshot(r: Raft, to: NodeId): boolean {
  const pr = r.tracker.progress.get(to)!;
  // Do not ship a large snapshot to a peer we have not heard from lately.
  if (!pr.recentActive) return false;
  const snap = r.log.snapshot();
  if (snap.meta.index === 0) return false; // nothing compacted yet: storage will catch up
  r.send({ type: 'snap', from: r.id, to, term: r.term, snapshot: snap });
  pr.becomeSnapshot(snap.meta.index);
  return true;
}

/** Sends appends to every peer (entries when there are any; with `sendIfEmpty`, probes too). */
export function bcastAppend(r: Raft, sendIfEmpty: boolean): void {
  for (const id of r.tracker.progress.keys()) {
    if (id === r.id) continue;
    // Keep filling the pipeline while the window allows and entries remain.
    let sent = maybeSendAppend(r, id, sendIfEmpty);
    while (sent) {
      const pr = r.tracker.progress.get(id);
      if (!pr || pr.state !== 'replicate' || pr.next > r.log.lastIndex()) break;
      sent = maybeSendAppend(r, id, false);
    }
  }
}

/**
 * Heartbeats to every peer, carrying the commit index (never past what the peer holds) and
 * a new confirmation round for ReadIndex and the lease (read-only.ts).
 */
export function bcastHeartbeat(r: Raft): void {
  const round = r.readOnly.startRound(r.now);
  const context = encodeRound(round);
  for (const [id, pr] of r.tracker.progress) {
    if (id === r.id) continue;
    r.send({
      type: 'heartbeat',
      from: r.id,
      to: id,
      term: r.term,
      commit: Math.min(pr.match, r.log.committed),
      context,
    });
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(pr.match, r.log.committed));
  }
  // A cluster where we are the only voter confirms the round at once.
  confirmRounds(r);
}

/** Serves the reads a newly confirmed round covers; starts another round if reads wait. */
function confirmRounds(r: Raft): void {
  const q = r.tracker.quorumRound(r.id, r.readOnly.round);
  const served = r.readOnly.confirm(q);
  for (const read of served) r.answerRead(read.from, read.context, read.index);
  if (r.readOnly.wantRound && r.readOnly.pending.length > 0 && !r.readOnly.inFlight()) bcastHeartbeat(r);
}

/** A follower answered a heartbeat of round `round` (0: no round). */
export function handleHeartbeatResponse(r: Raft, from: NodeId, round: number): void {
  const pr = r.tracker.progress.get(from);
  if (!pr) return;
  pr.recentActive = true;
  pr.probeSent = false;
  // A full window may mean a lost append: free one slot so replication can resume.
  if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.log.lastIndex()) maybeSendAppend(r, from, true);
  if (round > pr.ackedRound) {
    pr.ackedRound = round;
    if (!pr.isLearner) confirmRounds(r);
  }
}

/** With `lazyCommit`: once a tick, tell followers that lag behind the commit index about it. */
export function flushCommit(r: Raft): void {
  for (const [id, pr] of r.tracker.progress) {
    if (id === r.id) continue;
    if (Math.min(pr.match, r.log.committed) > pr.sentCommit) maybeSendAppend(r, id, true);
  }
}

/** The leader hands over: tell an up-to-date transferee to campaign at once. */
export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.leaseRevoked = true;
  r.send({ type: 'timeout-now', from: r.id, to, term: r.term });
}

/** §5.3: a follower answered an AppendEntries (or installed a snapshot). */
export function handleAppendResponse(r: Raft, m: AppRespMsg): void {
  const pr = r.tracker.progress.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  if (m.reject) {
    // Fast backtracking: skip every entry of ours whose term exceeds the follower's term at
    // its hint, so each round trip rules out a whole term instead of one entry.
    let probe: Index = m.hintIndex;
    if (m.hintTerm > 0) probe = r.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
    if (pr.maybeDecrTo(m.index, probe)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      maybeSendAppend(r, m.from, true);
    }
    return;
  }
  const wasPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index)) {
    // A duplicate or stale success; in probe state the probe is answered anyway.
    if (pr.state === 'probe' && m.index === pr.match) pr.probeSent = false;
    else return;
  }
  switch (pr.state) {
    case 'probe':
      pr.becomeReplicate();
      break;
    case 'snapshot':
      if (pr.match + 1 >= r.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      }
      break;
    case 'replicate':
      pr.inflights.freeLE(m.index);
      break;
  }
  if (r.maybeCommit()) {
    bcastAppend(r, !r.cfg.lazyCommit);
  } else if (wasPaused || pr.state === 'replicate') {
    // A follower that was paused when commit last moved may not know it yet: tell it, even
    // with an empty append, so it can apply without waiting for the next heartbeat.
    const bumpCommit = !r.cfg.lazyCommit && Math.min(r.log.committed, pr.match) > pr.sentCommit;
    let sent = maybeSendAppend(r, m.from, bumpCommit);
    while (sent && pr.state === 'replicate' && pr.next <= r.log.lastIndex()) {
      sent = maybeSendAppend(r, m.from, false);
    }
  }
  if (r.role === 'leader' && m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    sendTimeoutNow(r, m.from);
  }
}
