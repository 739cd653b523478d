import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../../src/client/index.js';
import { startKv, type RunningKv } from '../../../src/kv/run.js';
import { MemoryStorage } from '../../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';
import { TEST_CERT, TEST_KEY } from '../client/tls-fixture.js';

/** The client API over TLS with a bearer token: a round trip through the real server. */
describe('client API over TLS with a token', () => {
  let kv: RunningKv;
  beforeAll(async () => {
    kv = await startKv({
      name: 'solo',
      dataDir: 'unused',
      listenPeerUrl: 'http://127.0.0.1:0',
      listenClientUrl: 'https://127.0.0.1:0',
      initialCluster: new Map([['solo', 'http://127.0.0.1:1']]),
      initialClusterState: 'new',
      clusterSecret: 'x',
      clientToken: 'tok',
      clientTls: { cert: Buffer.from(TEST_CERT), key: Buffer.from(TEST_KEY) },
      storage: new MemoryStorage(),
      transport: new MemoryNetwork().transport('solo'),
      tickMs: 5,
    });
    const deadline = Date.now() + 5000;
    while (!kv.node.isLeader() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  });
  afterAll(() => kv.stop());

  it('serves https and the client trusts it with the CA; a wrong token is refused with 401', async () => {
    expect(kv.server.url()).toMatch(/^https:\/\//);
    const good = new KvClient({ endpoints: [kv.server.url()], ca: TEST_CERT, token: 'tok' });
    try {
      await good.put('secure', 'yes');
      expect(await good.getString('secure')).toBe('yes');
    } finally {
      good.close();
    }
    const bad = new KvClient({
      endpoints: [kv.server.url()],
      ca: TEST_CERT,
      token: 'nope',
      deadlineMs: 2000,
    });
    try {
      await expect(bad.put('secure', 'no')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    } finally {
      bad.close();
    }
    const check = new KvClient({ endpoints: [kv.server.url()], ca: TEST_CERT, token: 'tok' });
    try {
      expect(await check.getString('secure')).toBe('yes');
    } finally {
      check.close();
    }
  });
});
