// Serves the math contract. Run: AMQP_URL=amqp://guest:guest@localhost:5672 npx tsx examples/server.ts
import { connect } from '../src/index.js'; // 'rabbit-rpc' in your project
import { math } from './contract.js';

const rpc = await connect(process.env['AMQP_URL']);

const server = await rpc.serve(
  math,
  {
    add: ({ a, b }) => a + b,
    divide: ({ a, b }, ctx) => {
      if (b === 0) throw ctx.error('OUT_OF_RANGE', 'cannot divide by zero', { divisor: b });
      return a / b;
    },
    ping: () => 'pong',
  },
  { prefetch: 10, validateOutput: true },
);
console.log(`serving "${math.name}" on queue "${server.queue}"; Ctrl-C to stop`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Finishes running requests, then closes the connection.
    void rpc.close().then(() => console.log('stopped'));
  });
}
