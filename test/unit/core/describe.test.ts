import { describe, expect, it } from 'vitest';
import {
  describeConf,
  describeData,
  describeEntries,
  describeEntry,
  describeHardState,
  describeMessage,
} from '../../../src/core/describe.js';
import { encodeRound } from '../../../src/core/read-only.js';
import { isLocalMessage, isResponse, type Message } from '../../../src/core/messages.js';
import { bytes, conf, confEntry, entry } from './helpers.js';

describe('describe: one compact text form per type', () => {
  it('data: printable text quoted, anything else as hex with its size', () => {
    expect(describeData(new Uint8Array(0))).toBe('');
    expect(describeData(bytes('put x'))).toBe('"put x"');
    expect(describeData(new Uint8Array([0, 1, 255]))).toBe('0x0001ff (3B)');
    expect(describeData(bytes('a'.repeat(40)))).toBe('0x6161616161616161… (40B)');
    expect(describeData(bytes('tab\there'))).toBe('0x7461620968657265 (8B)');
  });

  it('entries: normal, no-op and membership changes', () => {
    expect(describeEntry(entry(41, 3, 'put x'))).toBe('3/41 "put x"');
    expect(describeEntry({ index: 43, term: 3, type: 'normal', data: new Uint8Array(0) })).toBe('3/43 noop');
    expect(describeEntry(confEntry(42, 3, { changes: [{ op: 'add-voter', node: 'n4' }] }))).toBe(
      '3/42 conf add-voter n4',
    );
    expect(
      describeEntry(
        confEntry(5, 2, {
          changes: [
            { op: 'remove', node: 'n1' },
            { op: 'add-learner', node: 'n5' },
          ],
          joint: true,
        }),
      ),
    ).toBe('2/5 conf joint remove n1, add-learner n5');
    expect(describeEntry(confEntry(6, 2, { changes: [], leaveJoint: true }))).toBe('2/6 conf leave-joint');
    expect(describeEntry({ index: 7, term: 2, type: 'conf', data: bytes('{') })).toBe('2/7 conf <malformed>');
    expect(describeEntries([entry(1, 1, 'a'), entry(2, 1, 'b')])).toBe('1/1 "a", 1/2 "b"');
  });

  it('hard state and membership', () => {
    expect(describeHardState({ term: 3, vote: 'n2', commit: 40 })).toBe('term=3 vote=n2 commit=40');
    expect(describeHardState({ term: 0, vote: undefined, commit: 0 })).toBe('term=0 vote=- commit=0');
    expect(describeConf(conf(['n1', 'n2', 'n3']))).toBe('voters=(n1 n2 n3)');
    expect(
      describeConf({ voters: ['n1', 'n2'], outgoing: ['n1', 'n3'], learners: ['n4'], learnersNext: ['n3'] }),
    ).toBe('voters=(n1 n2)&&(n1 n3) learners=(n4) learners_next=(n3)');
  });

  it('every message type', () => {
    const b = { from: 'n1', to: 'n2', term: 3 };
    const e = entry(42, 3, 'put x');
    const cases: [Message, string][] = [
      [{ ...b, type: 'hup' }, 'n1->n2 hup term=3'],
      [{ ...b, type: 'hup', transfer: true }, 'n1->n2 hup term=3 transfer'],
      [{ ...b, type: 'beat' }, 'n1->n2 beat term=3'],
      [{ ...b, type: 'check-quorum' }, 'n1->n2 check-quorum term=3'],
      [{ ...b, type: 'timeout-now' }, 'n1->n2 timeout-now term=3'],
      [{ ...b, type: 'unreachable' }, 'n1->n2 unreachable term=3'],
      [{ ...b, type: 'prop', entries: [e] }, 'n1->n2 prop term=3 entries=1 (29B)'],
      [{ ...b, type: 'prop', entries: [] }, 'n1->n2 prop term=3 entries=0'],
      [{ ...b, type: 'vote', lastLogIndex: 41, lastLogTerm: 2 }, 'n1->n2 vote term=3 last=2/41'],
      [
        { ...b, type: 'prevote', lastLogIndex: 41, lastLogTerm: 2, transfer: true },
        'n1->n2 prevote term=3 last=2/41 transfer',
      ],
      [{ ...b, type: 'vote-resp', reject: false }, 'n1->n2 vote-resp term=3 granted'],
      [{ ...b, type: 'prevote-resp', reject: true }, 'n1->n2 prevote-resp term=3 rejected'],
      [
        { ...b, type: 'app', prevIndex: 41, prevTerm: 2, entries: [e], commit: 40 },
        'n1->n2 app term=3 prev=2/41 commit=40 entries=1 (29B)',
      ],
      [
        { ...b, type: 'app-resp', reject: false, index: 42, hintIndex: 0, hintTerm: 0 },
        'n1->n2 app-resp term=3 index=42',
      ],
      [
        { ...b, type: 'app-resp', reject: true, index: 42, hintIndex: 30, hintTerm: 2 },
        'n1->n2 app-resp term=3 rejected index=42 hint=2/30',
      ],
      [
        { ...b, type: 'heartbeat', commit: 40, context: encodeRound(7) },
        'n1->n2 heartbeat term=3 commit=40 round=7',
      ],
      [{ ...b, type: 'heartbeat-resp', context: new Uint8Array(0) }, 'n1->n2 heartbeat-resp term=3 round=0'],
      [
        {
          ...b,
          type: 'snap',
          snapshot: { meta: { index: 40, term: 2, conf: conf(['n1']) }, data: new Uint8Array(0) },
        },
        'n1->n2 snap term=3 snapshot=2/40 voters=(n1)',
      ],
      [{ ...b, type: 'snap-status', reject: false }, 'n1->n2 snap-status term=3 ok'],
      [{ ...b, type: 'snap-status', reject: true }, 'n1->n2 snap-status term=3 failed'],
      [{ ...b, type: 'transfer-leader', transferee: 'n3' }, 'n1->n2 transfer-leader term=3 transferee=n3'],
      [
        { ...b, type: 'read-index', context: bytes('r1'), lease: true },
        'n1->n2 read-index term=3 ctx="r1" lease',
      ],
      [
        { ...b, type: 'read-index-resp', index: 40, context: bytes('r1'), reject: true },
        'n1->n2 read-index-resp term=3 index=40 ctx="r1" rejected',
      ],
    ];
    for (const [m, want] of cases) expect(describeMessage(m)).toBe(want);
    expect(describeMessage({ ...b, type: 'prop', entries: [e] }, true)).toBe(
      'n1->n2 prop term=3 entries=1 (29B) [3/42 "put x"]',
    );
  });

  it('classifies local messages and responses', () => {
    const b = { from: 'n1', to: 'n2', term: 0 };
    expect(isLocalMessage({ ...b, type: 'beat' })).toBe(true);
    expect(isLocalMessage({ ...b, type: 'timeout-now' })).toBe(false);
    expect(isResponse({ ...b, type: 'vote-resp', reject: false })).toBe(true);
    expect(
      isResponse({ ...b, type: 'read-index-resp', index: 1, context: new Uint8Array(0), reject: false }),
    ).toBe(true);
    expect(isResponse({ ...b, type: 'heartbeat', commit: 0, context: new Uint8Array(0) })).toBe(false);
  });

  it('an unknown message type is a bug', () => {
    expect(() =>
      describeMessage({ type: 'bogus', from: 'a', to: 'b', term: 1 } as unknown as Message),
    ).toThrow(/unreachable/);
  });
});
