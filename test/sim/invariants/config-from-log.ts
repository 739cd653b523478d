// §6 Configurations: a server always uses the newest configuration in its own log (committed
// or not), so the configuration each node runs with is exactly the one its log spells out.
import { applyConfChange, confEquals, decodeConfChange } from '../../../src/core/membership.js';
import { describeConf } from '../../../src/core/describe.js';
import type { ConfState } from '../../../src/core/messages.js';
import type { Invariant } from './types.js';

const EVERY = 97;

export function configFromLog(): Invariant {
  let steps = 0;
  return {
    name: 'config-from-log',
    section: '§6',
    afterStep(sim) {
      if (++steps % EVERY !== 0) return undefined;
      for (const n of sim.live()) {
        const r = n.rn.raft;
        const log = r.log;
        const snap = log.snapshot().meta;
        let conf: ConfState = snap.conf;
        // Entries kept below the snapshot (the catch-up margin) are already in its membership.
        const first = Math.max(log.firstIndex(), snap.index + 1);
        const last = log.lastIndex();
        if (last >= first) {
          for (const e of log.slice(first, last + 1, Number.MAX_SAFE_INTEGER)) {
            if (e.type !== 'conf') continue;
            try {
              conf = applyConfChange(conf, decodeConfChange(e.data));
            } catch {
              // an inapplicable change is a no-op everywhere
            }
          }
        }
        const used = r.currentConf();
        if (!confEquals(conf, used)) {
          return `${n.id} runs with ${describeConf(used)} but its log says ${describeConf(conf)}`;
        }
        if (!confEquals(r.tracker.conf, used)) {
          return `${n.id}'s progress tracker has ${describeConf(r.tracker.conf)}, not ${describeConf(used)}`;
        }
      }
      return undefined;
    },
  };
}
