import { configFromLog } from './config-from-log.js';
import { electionSafety } from './election-safety.js';
import { leaderAppendOnly } from './leader-append-only.js';
import { leaderCompleteness } from './leader-completeness.js';
import { logMatching } from './log-matching.js';
import { readFreshness } from './read-freshness.js';
import { snapshotConsistency } from './snapshot-consistency.js';
import { stateMachineSafety } from './state-machine-safety.js';
import type { Invariant } from './types.js';

/** Every safety property of the paper's Figure 3, plus read freshness, membership and snapshots. */
export function allInvariants(): Invariant[] {
  return [
    electionSafety(),
    leaderAppendOnly(),
    logMatching(),
    leaderCompleteness(),
    stateMachineSafety(),
    readFreshness(),
    configFromLog(),
    snapshotConsistency(),
  ];
}

export type { Invariant } from './types.js';
