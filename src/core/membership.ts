import { RaftError } from '../errors.js';
import type { ConfChange, ConfState, NodeId } from './messages.js';

/**
 * Membership changes (§6): applying a {@link ConfChange} to a {@link ConfState}, and the
 * wire form of a change inside a `conf` log entry.
 *
 * A change that adds or removes at most one voter may take the simple path (the new
 * configuration takes effect at once: any two majorities of configurations differing by
 * one voter overlap). Anything else enters joint consensus: C_old,new (`outgoing` = C_old,
 * `voters` = C_new) until the leader appends the `leaveJoint` change.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a change as the `data` of a `conf` entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

/** Decodes the `data` of a `conf` entry. Throws `BAD_REQUEST` when malformed. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch (e) {
    throw new RaftError('BAD_REQUEST', 'conf entry is not a valid ConfChange', { cause: e });
  }
  if (typeof v !== 'object' || v === null || !Array.isArray((v as ConfChange).changes)) {
    throw new RaftError('BAD_REQUEST', 'conf entry is not a valid ConfChange');
  }
  return v as ConfChange;
}

/** True when `c` is a joint configuration (C_old,new). */
export function isJoint(c: ConfState): boolean {
  return c.outgoing.length > 0;
}

/** Every member of `c`: voters of both halves and learners. */
export function allMembers(c: ConfState): NodeId[] {
  const s = new Set<NodeId>([...c.voters, ...c.outgoing, ...c.learners, ...c.learnersNext]);
  return [...s];
}

/** True when `id` votes in `c` (in either half of a joint configuration). */
export function isVoter(c: ConfState, id: NodeId): boolean {
  return c.voters.includes(id) || c.outgoing.includes(id);
}

function without(xs: readonly NodeId[], id: NodeId): NodeId[] {
  return xs.filter((x) => x !== id);
}

function withId(xs: readonly NodeId[], id: NodeId): NodeId[] {
  return xs.includes(id) ? [...xs] : [...xs, id];
}

/** True when this change may take the simple (non-joint) path. */
export function isSimpleChange(c: ConfState, cc: ConfChange): boolean {
  if (cc.leaveJoint || cc.joint) return false;
  if (isJoint(c)) return false;
  const next = applyItems(c, cc, false);
  const before = new Set(c.voters);
  const after = new Set(next.voters);
  let diff = 0;
  for (const v of before) if (!after.has(v)) diff++;
  for (const v of after) if (!before.has(v)) diff++;
  return diff <= 1;
}

function applyItems(c: ConfState, cc: ConfChange, joint: boolean): ConfState {
  let voters = [...c.voters];
  let learners = [...c.learners];
  let learnersNext = [...c.learnersNext];
  const outgoing = joint ? [...c.voters] : [...c.outgoing];
  for (const item of cc.changes) {
    const id = item.node;
    switch (item.op) {
      case 'add-voter':
        voters = withId(voters, id);
        learners = without(learners, id);
        learnersNext = without(learnersNext, id);
        break;
      case 'add-learner':
        voters = without(voters, id);
        learners = without(learners, id);
        learnersNext = without(learnersNext, id);
        // A voter of C_old demoted to learner stays a voter of C_old until the joint
        // configuration is left; it becomes a learner then.
        if (outgoing.includes(id)) learnersNext = withId(learnersNext, id);
        else learners = withId(learners, id);
        break;
      case 'remove':
        voters = without(voters, id);
        learners = without(learners, id);
        learnersNext = without(learnersNext, id);
        break;
    }
  }
  return { voters, outgoing, learners, learnersNext };
}

/**
 * The configuration after applying `cc` to `c`. Throws `BAD_REQUEST` for changes that
 * cannot apply (entering joint while joint, leaving when not joint, an empty C_new).
 */
export function applyConfChange(c: ConfState, cc: ConfChange): ConfState {
  if (cc.leaveJoint) {
    if (!isJoint(c)) throw new RaftError('BAD_REQUEST', 'not in a joint configuration');
    return {
      voters: [...c.voters],
      outgoing: [],
      learners: [...c.learners, ...c.learnersNext.filter((l) => !c.learners.includes(l))],
      learnersNext: [],
    };
  }
  if (isJoint(c)) throw new RaftError('BAD_REQUEST', 'already in a joint configuration; leave it first');
  for (const item of cc.changes) {
    if (typeof item.node !== 'string' || item.node === '') {
      throw new RaftError('BAD_REQUEST', 'a membership change names an empty node');
    }
    if (item.op !== 'add-voter' && item.op !== 'add-learner' && item.op !== 'remove') {
      throw new RaftError('BAD_REQUEST', `unknown membership change op ${String(item.op)}`);
    }
  }
  const simple = isSimpleChange(c, cc);
  const next = applyItems(c, cc, !simple);
  if (next.voters.length === 0)
    throw new RaftError('BAD_REQUEST', 'a configuration must keep at least one voter');
  return next;
}

/** Two configurations are equal as sets. */
export function confEquals(a: ConfState, b: ConfState): boolean {
  const eq = (x: readonly NodeId[], y: readonly NodeId[]): boolean =>
    x.length === y.length && x.every((v) => y.includes(v));
  return (
    eq(a.voters, b.voters) &&
    eq(a.outgoing, b.outgoing) &&
    eq(a.learners, b.learners) &&
    eq(a.learnersNext, b.learnersNext)
  );
}
