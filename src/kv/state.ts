import { RaftError } from '../errors.js';
import type { Index } from '../core/messages.js';
import type { Command, StateMachine } from '../node/state-machine.js';
import { decodeCommand, type KvCommand } from './commands.js';

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
  private readonly data = new Map<string, KvEntry>();
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
        // Copy: the command's bytes may be a view into a large network frame.
        this.data.set(cmd.key, {
          value: cmd.value.slice(),
          modIndex: index,
          createIndex: cur ? cur.createIndex : index,
        });
        return { ok: true, index };
      }
      case 'delete': {
        if (cmd.prevIndex >= 0 && (cur?.modIndex ?? 0) !== cmd.prevIndex) {
          return { ok: false, index, code: 'PRECONDITION_FAILED', modIndex: cur?.modIndex ?? 0 };
        }
        if (!cur) return { ok: false, index, code: 'NOT_FOUND' };
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

  /**
   * The whole state as bytes: a JSON header line (sessions, members, log time) followed by
   * length-prefixed key/value records.
   */
  snapshot(): Uint8Array {
    const enc = new TextEncoder();
    const header = enc.encode(
      JSON.stringify({
        v: 1,
        appliedIndex: this.appliedIndex,
        logTime: this.logTime,
        lastExpiry: this.lastExpiry,
        sessions: [...this.sessions].map(([id, s]) => [id, s.seq, s.result, s.lastSeen]),
        members: [...this.members],
        keys: this.data.size,
      }),
    );
    let size = 4 + header.byteLength;
    const keys: Uint8Array[] = [];
    for (const [k, e] of this.data) {
      const kb = enc.encode(k);
      keys.push(kb);
      size += 2 + kb.byteLength + 16 + 4 + e.value.byteLength;
    }
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    let o = 0;
    dv.setUint32(o, header.byteLength);
    o += 4;
    out.set(header, o);
    o += header.byteLength;
    let i = 0;
    for (const e of this.data.values()) {
      const kb = keys[i++]!;
      dv.setUint16(o, kb.byteLength);
      o += 2;
      out.set(kb, o);
      o += kb.byteLength;
      dv.setFloat64(o, e.modIndex);
      dv.setFloat64(o + 8, e.createIndex);
      o += 16;
      dv.setUint32(o, e.value.byteLength);
      o += 4;
      out.set(e.value, o);
      o += e.value.byteLength;
    }
    return out;
  }

  restore(b: Uint8Array): void {
    const bad = (): RaftError => new RaftError('CORRUPT_LOG', 'kv snapshot is malformed');
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.byteLength < 4) throw bad();
    const hl = dv.getUint32(0);
    if (4 + hl > b.byteLength) throw bad();
    const h = JSON.parse(new TextDecoder().decode(b.subarray(4, 4 + hl))) as {
      v: number;
      appliedIndex: number;
      logTime: number;
      lastExpiry: number;
      sessions: [string, number, KvResult, number][];
      members: [string, MemberAttrs][];
      keys: number;
    };
    if (h.v !== 1) throw bad();
    this.data.clear();
    this.sessions.clear();
    this.members.clear();
    this.appliedIndex = h.appliedIndex;
    this.logTime = h.logTime;
    this.lastExpiry = h.lastExpiry;
    for (const [id, seq, result, lastSeen] of h.sessions) this.sessions.set(id, { seq, result, lastSeen });
    for (const [name, m] of h.members) {
      this.members.set(name, m);
      this.onMemberChange?.(name, m);
    }
    let o = 4 + hl;
    const dec = new TextDecoder();
    for (let i = 0; i < h.keys; i++) {
      if (o + 2 > b.byteLength) throw bad();
      const kl = dv.getUint16(o);
      o += 2;
      if (o + kl + 20 > b.byteLength) throw bad();
      const key = dec.decode(b.subarray(o, o + kl));
      o += kl;
      const modIndex = dv.getFloat64(o);
      const createIndex = dv.getFloat64(o + 8);
      o += 16;
      const vl = dv.getUint32(o);
      o += 4;
      if (o + vl > b.byteLength) throw bad();
      this.data.set(key, { value: b.slice(o, o + vl), modIndex, createIndex });
      o += vl;
    }
  }
}
