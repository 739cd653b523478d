import { decodeConfChange } from './membership.js';
import {
  entrySize,
  unreachable,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
} from './messages.js';
import { decodeRound } from './read-only.js';

/**
 * One compact text form per type (STYLE.md convention 14), shared by logs, transcripts,
 * simulator traces and the dashboard, e.g. `n1->n2 app term=3 prev=2/41 commit=40 entries=1 (128B)`.
 */

const decoder = new TextDecoder();

function bytes(n: number): string {
  return `${n}B`;
}

/** A short printable form of opaque bytes: UTF-8 when printable, else hex. */
export function describeData(d: Uint8Array): string {
  if (d.byteLength === 0) return '';
  if (d.byteLength <= 32) {
    const s = decoder.decode(d);
    if (/^[\x20-\x7e]*$/.test(s)) return JSON.stringify(s);
  }
  let hex = '';
  for (let i = 0; i < Math.min(d.byteLength, 8); i++) hex += d[i]!.toString(16).padStart(2, '0');
  return `0x${hex}${d.byteLength > 8 ? '…' : ''} (${bytes(d.byteLength)})`;
}

/** `3/41 "put x"`, `3/42 conf add-voter n4`, `3/43 noop`. */
export function describeEntry(e: Entry): string {
  if (e.type === 'conf') {
    try {
      const cc = decodeConfChange(e.data);
      if (cc.leaveJoint) return `${e.term}/${e.index} conf leave-joint`;
      const items = cc.changes.map((c) => `${c.op} ${c.node}`).join(', ');
      return `${e.term}/${e.index} conf${cc.joint ? ' joint' : ''} ${items}`;
    } catch {
      return `${e.term}/${e.index} conf <malformed>`;
    }
  }
  if (e.data.byteLength === 0) return `${e.term}/${e.index} noop`;
  return `${e.term}/${e.index} ${describeData(e.data)}`;
}

export function describeEntries(ents: readonly Entry[]): string {
  return ents.map(describeEntry).join(', ');
}

export function describeHardState(h: HardState): string {
  return `term=${h.term} vote=${h.vote ?? '-'} commit=${h.commit}`;
}

export function describeConf(c: ConfState): string {
  let s = `voters=(${c.voters.join(' ')})`;
  if (c.outgoing.length > 0) s += `&&(${c.outgoing.join(' ')})`;
  if (c.learners.length > 0) s += ` learners=(${c.learners.join(' ')})`;
  if (c.learnersNext.length > 0) s += ` learners_next=(${c.learnersNext.join(' ')})`;
  return s;
}

function entriesPart(ents: readonly Entry[], verbose: boolean): string {
  if (ents.length === 0) return ' entries=0';
  let size = 0;
  for (const e of ents) size += entrySize(e);
  const base = ` entries=${ents.length} (${bytes(size)})`;
  return verbose ? `${base} [${describeEntries(ents)}]` : base;
}

/**
 * `n1->n2 app term=3 prev=2/41 commit=40 entries=1 (128B)`. With `verbose`, entries are
 * listed too.
 */
export function describeMessage(m: Message, verbose = false): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'hup':
      return `${head}${m.transfer ? ' transfer' : ''}`;
    case 'beat':
    case 'check-quorum':
    case 'timeout-now':
    case 'unreachable':
      return head;
    case 'prop':
      return `${head}${entriesPart(m.entries, verbose)}`;
    case 'vote':
    case 'prevote':
      return `${head} last=${m.lastLogTerm}/${m.lastLogIndex}${m.transfer ? ' transfer' : ''}`;
    case 'vote-resp':
    case 'prevote-resp':
      return `${head}${m.reject ? ' rejected' : ' granted'}`;
    case 'app':
      return `${head} prev=${m.prevTerm}/${m.prevIndex} commit=${m.commit}${entriesPart(m.entries, verbose)}`;
    case 'app-resp':
      return m.reject
        ? `${head} rejected index=${m.index} hint=${m.hintTerm}/${m.hintIndex}`
        : `${head} index=${m.index}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} round=${decodeRound(m.context)}`;
    case 'heartbeat-resp':
      return `${head} round=${decodeRound(m.context)}`;
    case 'snap':
      return `${head} snapshot=${m.snapshot.meta.term}/${m.snapshot.meta.index} ${describeConf(m.snapshot.meta.conf)}`;
    case 'snap-status':
      return `${head}${m.reject ? ' failed' : ' ok'}`;
    case 'transfer-leader':
      return `${head} transferee=${m.transferee}`;
    case 'read-index':
      return `${head} ctx=${describeData(m.context)}${m.lease ? ' lease' : ''}`;
    case 'read-index-resp':
      return `${head} index=${m.index} ctx=${describeData(m.context)}${m.reject ? ' rejected' : ''}`;
    default:
      return unreachable(m);
  }
}
