// Calls the math service. Start examples/server.ts first, then:
// AMQP_URL=amqp://guest:guest@localhost:5672 npx tsx examples/client.ts
import { connect, isServiceError } from '../src/index.js'; // 'rabbit-rpc' in your project
import { math } from './contract.js';

const rpc = await connect(process.env['AMQP_URL']);
try {
  // validateInput: a bad call fails here, before anything is sent.
  const calc = rpc.client(math, { validateInput: true });

  const sum = await calc.add({ a: 1, b: 2 }); // sum: number
  console.log('add(1, 2) =', sum);
  console.log('ping() =', await calc.ping(undefined, { timeoutMs: 2_000 })); // per-call options last

  // A streaming method: an AsyncIterable of numbers, not a promise. Leaving the loop early
  // (break, return, a throw) cancels the stream on the server.
  const numbers: number[] = [];
  for await (const n of calc.fibonacci({ count: 50 }, { window: 8, timeoutMs: 5_000 })) {
    if (n > 100) break;
    numbers.push(n);
  }
  console.log('fibonacci up to 100:', numbers.join(' '));

  try {
    await calc.divide({ a: 1, b: 0 }, { timeoutMs: 5_000 });
  } catch (error) {
    if (isServiceError(error, math, 'divide')) {
      // error.code is 'OUT_OF_RANGE' and error.details is { divisor: number }
      console.log(`divide(1, 0) failed: ${error.code}, divisor ${error.details.divisor}`);
    } else {
      throw error;
    }
  }
} finally {
  await rpc.close();
}
