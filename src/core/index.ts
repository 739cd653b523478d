/** The core: Raft as a pure, deterministic state machine. Re-exports only. */
export { RawNode, type Proposed, type Status } from './raw-node.js';
export type { Ready } from './ready.js';
export type { Role, SoftState } from './raft.js';
export { resolveConfig, type RaftConfig, type ResolvedConfig } from './config.js';
export type { LogStorage } from './log-storage.js';
export { SeededRand, type Rand } from './rand.js';
export type { ProgressState } from './progress.js';
export {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  isJoint,
  isVoter,
  allMembers,
} from './membership.js';
export {
  describeConf,
  describeEntries,
  describeEntry,
  describeHardState,
  describeMessage,
} from './describe.js';
export {
  EMPTY_CONF,
  EMPTY_HARD_STATE,
  entrySize,
  isLocalMessage,
  type ConfChange,
  type ConfChangeItem,
  type ConfChangeOp,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Index,
  type Message,
  type MessageType,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SnapshotMeta,
  type Term,
} from './messages.js';
