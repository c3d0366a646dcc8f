// Serves the math contract. Run: AMQP_URL=amqp://guest:guest@localhost:5672 npx tsx examples/server.ts
import { setTimeout as sleep } from 'node:timers/promises';
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
    // An async generator: each item goes out as it is yielded, as fast as the client reads.
    // When the client stops reading, the generator is stopped (its finally blocks run).
    fibonacci: async function* ({ count }) {
      let [a, b] = [0, 1];
      for (let i = 0; i < count; i++) {
        await sleep(10); // a live source: one number every 10 ms
        yield a;
        [a, b] = [b, a + b];
      }
    },
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
