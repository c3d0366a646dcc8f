import { connect } from './src/index.js';
import { math } from './examples/contract.js';
const rpc = await connect(process.env.AMQP_URL);
await rpc.serve(math, {
  add: ({ a, b }) => a + b,
  divide: ({ a, b }) => a / b,
  ping: () => 'pong' as const,
  async *fibonacci({ count }) { let [x, y] = [0, 1]; for (let i = 0; i < count; i++) { yield x; [x, y] = [y, x + y]; await Promise.resolve(); } },
});
const rpc2 = await connect(process.env.AMQP_URL);
await rpc2.serve(math, { add: ({ a, b }) => a + b, divide: ({ a, b }) => a / b, ping: () => 'pong' as const, async *fibonacci() { yield await Promise.resolve(0); } });
await rpc.client(math).add({ a: 1, b: 2 });
process.stdout.write('ready\n');
await new Promise((r) => setTimeout(r, 25_000));
await rpc.close(); await rpc2.close();
