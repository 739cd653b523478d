import { runTransportSuite } from '../../../src/testing/transport-suite.js';
import { formatAddress } from '../../../src/transport/address.js';
import { MemoryNetwork } from '../../../src/transport/memory-transport.js';
import { TcpTransport } from '../../../src/transport/tcp-transport.js';

runTransportSuite('memory', () => {
  const net = new MemoryNetwork();
  return { create: (id, events) => net.transport(id, { events }), addressOf: (t) => `memory://${t.id}` };
});

runTransportSuite('tcp', () => ({
  create: (id, events) =>
    new TcpTransport({
      id,
      listen: '127.0.0.1:0',
      secret: 'conformance-secret',
      events,
      backoffMinMs: 10,
      backoffMaxMs: 100,
    }),
  addressOf: (t) => formatAddress((t as TcpTransport).address()),
}));
