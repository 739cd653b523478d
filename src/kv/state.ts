import { RaftError } from '../errors.js';
import type { Index } from '../core/messages.js';
import type { Command, StateMachine } from '../node/state-machine.js';
import { decodeCommand, type KvCommand } from './commands.js';
import { KvSnapshotParser, KvSnapshotWriter, type KvSnapshotHeader } from './snapshot-codec.js';

/** A stored value with its etcd-style revision indexes. */
export interface KvEntry {
  readonly value: Uint8Array;
  /** Log index of the write that last changed the key. */
  readonly modIndex: Index;
  /** Log index of the write that created the key (since it last was absent). */
  readonly createIndex: Index;
}

/** What applying a write answers. */
export type KvResult =
  | { readonly ok: true; readonly index: Index; readonly deleted?: boolean }
  | {
      readonly ok: false;
      readonly index: Index;
      readonly code: 'PRECONDITION_FAILED' | 'NOT_FOUND' | 'STALE_SEQUENCE' | 'BAD_COMMAND';
      readonly modIndex?: Index;
    };

/**
 * Replicated attributes of a cluster member: where peers and clients reach it. Every member
 * publishes its client URL through the log (as etcd does); adding a member records its peer
 * URL before the membership change, so every server can reach it once it joins.
 */
export interface MemberAttrs {
  readonly clientUrl?: string;
  readonly peerUrl?: string;
}

interface Session {
  seq: number;
  result: KvResult;
  lastSeen: number;
}

/** A stored entry: its insertion ordinal (the Map's iteration order) marks what a snapshot saw. */
interface Stored extends KvEntry {
  readonly ord: number;
}

/**
 * A snapshot being serialized while applying continues (copy-on-write): entries inserted after
 * the capture have `ord > capturedOrd` and are skipped; an entry changed or deleted before the
 * serializer reached it leaves its captured value in `preimages`.
 */
interface SnapshotCursor {
  readonly capturedOrd: number;
  /** The ordinal of the last live entry the serializer passed. */
  visited: number;
  readonly preimages: Map<string, Stored>;
  /** Set when `restore` replaced the state: the serializer stops with an error. */
  dead: boolean;
}

/** Sessions idle longer than this (in log time) are forgotten. */
export const DEFAULT_SESSION_TTL_MS = 10 * 60 * 1000;

/**
 * The replicated key-value state machine: keys → {value, modIndex, createIndex}, client
 * sessions for exactly-once writes, and published member attributes.
 *
 * Exactly-once: a write carrying a client id and a sequence number applies once; a retry
 * with the same (id, seq) returns the first result without applying again; an older seq is
 * refused (`STALE_SEQUENCE`). A client issues one write at a time per client id. Sessions
 * expire after `sessionTtlMs` of *log time* (the largest leader timestamp applied), so every
 * replica forgets a session at the same log position.
 */
export class KvStateMachine implements StateMachine<KvResult> {
  private readonly data = new Map<string, Stored>();
  private ordSeq = 0;
  private cursor: SnapshotCursor | undefined;
  private readonly sessions = new Map<string, Session>();
  readonly members = new Map<string, MemberAttrs>();
  private logTime = 0;
  private lastExpiry = 0;
  /** Called whenever a member's replicated attributes change (e.g. to tell the transport). */
  onMemberChange: ((name: string, attrs: MemberAttrs | undefined) => void) | undefined;
  /** The index of the last command applied (for stale reads' X-Raft-Index). */
  appliedIndex: Index = 0;

  constructor(private readonly sessionTtlMs = DEFAULT_SESSION_TTL_MS) {}

  get(key: string): KvEntry | undefined {
    return this.data.get(key);
  }

  /** Keys starting with `prefix`, in byte order, at most `limit`. */
  list(prefix: string, limit: number): { key: string; entry: KvEntry }[] {
    const keys: string[] = [];
    for (const k of this.data.keys()) if (k.startsWith(prefix)) keys.push(k);
    keys.sort();
    return keys.slice(0, limit).map((key) => ({ key, entry: this.data.get(key)! }));
  }

  get size(): number {
    return this.data.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  apply(commands: readonly Command[]): KvResult[] {
    const out: KvResult[] = new Array<KvResult>(commands.length);
    for (let i = 0; i < commands.length; i++) out[i] = this.applyOne(commands[i]!);
    return out;
  }

  private applyOne(c: Command): KvResult {
    this.appliedIndex = c.index;
    let cmd: KvCommand;
    try {
      cmd = decodeCommand(c.data);
    } catch {
      // Every replica decodes the same bytes the same way: all refuse alike.
      return { ok: false, index: c.index, code: 'BAD_COMMAND' };
    }
    if (cmd.time > this.logTime) this.logTime = cmd.time;
    this.expireSessions();
    if (cmd.clientId !== '') {
      const s = this.sessions.get(cmd.clientId);
      if (s) {
        s.lastSeen = this.logTime;
        if (cmd.seq === s.seq) return s.result;
        if (cmd.seq < s.seq) return { ok: false, index: c.index, code: 'STALE_SEQUENCE' };
      }
    }
    const result = this.execute(cmd, c.index);
    if (cmd.clientId !== '')
      this.sessions.set(cmd.clientId, { seq: cmd.seq, result, lastSeen: this.logTime });
    return result;
  }

  private execute(cmd: KvCommand, index: Index): KvResult {
    const cur = this.data.get(cmd.key);
    switch (cmd.op) {
      case 'put': {
        if (cmd.prevIndex >= 0 && (cur?.modIndex ?? 0) !== cmd.prevIndex) {
          return { ok: false, index, code: 'PRECONDITION_FAILED', modIndex: cur?.modIndex ?? 0 };
        }
        this.beforeChange(cmd.key, cur);
        // Copy: the command's bytes may be a view into a large network frame.
        this.data.set(cmd.key, {
          value: cmd.value.slice(),
          modIndex: index,
          createIndex: cur ? cur.createIndex : index,
          // An update keeps the key's place (and ordinal); a new key goes last.
          ord: cur ? cur.ord : ++this.ordSeq,
        });
        return { ok: true, index };
      }
      case 'delete': {
        if (cmd.prevIndex >= 0 && (cur?.modIndex ?? 0) !== cmd.prevIndex) {
          return { ok: false, index, code: 'PRECONDITION_FAILED', modIndex: cur?.modIndex ?? 0 };
        }
        if (!cur) return { ok: false, index, code: 'NOT_FOUND' };
        this.beforeChange(cmd.key, cur);
        this.data.delete(cmd.key);
        return { ok: true, index, deleted: true };
      }
      case 'member': {
        // The value is a JSON object of attributes to merge; `{"removed":true}` forgets the member.
        let attrs: { clientUrl?: unknown; peerUrl?: unknown; removed?: unknown };
        try {
          attrs = JSON.parse(new TextDecoder().decode(cmd.value)) as typeof attrs;
        } catch {
          return { ok: false, index, code: 'BAD_COMMAND' };
        }
        if (attrs.removed === true) {
          this.members.delete(cmd.key);
        } else {
          const prev = this.members.get(cmd.key) ?? {};
          const next: MemberAttrs = {
            ...prev,
            ...(typeof attrs.clientUrl === 'string' ? { clientUrl: attrs.clientUrl } : {}),
            ...(typeof attrs.peerUrl === 'string' ? { peerUrl: attrs.peerUrl } : {}),
          };
          this.members.set(cmd.key, next);
        }
        this.onMemberChange?.(cmd.key, this.members.get(cmd.key));
        return { ok: true, index };
      }
    }
  }

  private expireSessions(): void {
    // Sweep at most once per minute of log time.
    if (this.logTime - this.lastExpiry < 60_000) return;
    this.lastExpiry = this.logTime;
    for (const [id, s] of this.sessions)
      if (this.logTime - s.lastSeen > this.sessionTtlMs) this.sessions.delete(id);
  }

  /** Copy-on-write: keep the value a running snapshot still needs before it changes. */
  private beforeChange(key: string, cur: Stored | undefined): void {
    const c = this.cursor;
    if (c === undefined || cur === undefined) return;
    if (cur.ord > c.capturedOrd || cur.ord <= c.visited) return;
    if (!c.preimages.has(key)) c.preimages.set(key, cur);
  }

  /**
   * The whole state as of now (the last applied command), in the format of snapshot-codec.ts,
   * as a stream of ~256 KiB chunks. Sessions, members and log time are captured at once; the keys
   * are serialized lazily from a copy-on-write view, so applying continues while the stream is
   * read (a key changed before the serializer reaches it keeps its captured value aside).
   * Only one snapshot is produced at a time: a new one ends the previous stream.
   */
  snapshot(): AsyncIterable<Uint8Array> {
    if (this.cursor !== undefined) this.cursor.dead = true;
    const header: KvSnapshotHeader = {
      v: 1,
      appliedIndex: this.appliedIndex,
      logTime: this.logTime,
      lastExpiry: this.lastExpiry,
      sessions: [...this.sessions].map(([id, s]) => [id, s.seq, s.result, s.lastSeen]),
      members: [...this.members],
      keys: this.data.size,
    };
    const cursor: SnapshotCursor = {
      capturedOrd: this.ordSeq,
      visited: 0,
      preimages: new Map(),
      dead: false,
    };
    this.cursor = cursor;
    const data = this.data;
    const release = (): void => {
      if (this.cursor === cursor) this.cursor = undefined;
    };
    async function* chunks(): AsyncGenerator<Uint8Array> {
      const w = new KvSnapshotWriter();
      const check = (): void => {
        if (cursor.dead) throw new RaftError('STOPPED', 'the state was replaced while being snapshotted');
      };
      try {
        w.header(header);
        let written = 0;
        for (const [key, e] of data) {
          if (e.ord > cursor.capturedOrd) break; // inserted after the capture (and all after it)
          cursor.visited = e.ord;
          if (cursor.preimages.has(key)) continue;
          w.record(key, e.modIndex, e.createIndex, e.value);
          written++;
          const ready = w.take();
          if (ready.length > 0) {
            for (const c of ready) yield c;
            check();
          }
        }
        // Every live entry of the capture was passed: nothing more needs copying.
        cursor.visited = cursor.capturedOrd;
        for (const [key, e] of cursor.preimages) {
          w.record(key, e.modIndex, e.createIndex, e.value);
          written++;
          const ready = w.take();
          if (ready.length > 0) {
            for (const c of ready) yield c;
            check();
          }
        }
        if (written !== header.keys) {
          throw new RaftError('INVARIANT', `kv snapshot wrote ${written} keys, captured ${header.keys}`);
        }
        w.flush();
        for (const c of w.take()) yield c;
      } finally {
        release();
      }
    }
    const it = chunks();
    return {
      [Symbol.asyncIterator]: () => it,
    };
  }

  /** The whole state as one buffer (tests and small stores; {@link snapshot} streams it). */
  async snapshotBytes(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const c of this.snapshot()) parts.push(c);
    return Buffer.concat(parts);
  }

  restore(b: Uint8Array): void {
    const p = this.restoreParser();
    p.push(b);
    p.end();
  }

  /** Restores from a snapshot's chunks as they are read (never the whole snapshot in memory). */
  async restoreStream(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const p = this.restoreParser();
    for await (const c of chunks) p.push(c);
    p.end();
  }

  private restoreParser(): KvSnapshotParser {
    if (this.cursor !== undefined) {
      this.cursor.dead = true;
      this.cursor = undefined;
    }
    this.data.clear();
    this.sessions.clear();
    this.members.clear();
    this.ordSeq = 0;
    return new KvSnapshotParser(
      (h) => {
        this.appliedIndex = h.appliedIndex;
        this.logTime = h.logTime;
        this.lastExpiry = h.lastExpiry;
        for (const [id, seq, result, lastSeen] of h.sessions)
          this.sessions.set(id, { seq, result: result as KvResult, lastSeen });
        for (const [name, m] of h.members) {
          this.members.set(name, m as MemberAttrs);
          this.onMemberChange?.(name, m as MemberAttrs);
        }
      },
      (key, modIndex, createIndex, value) => {
        this.data.set(key, { value, modIndex, createIndex, ord: ++this.ordSeq });
      },
    );
  }
}
