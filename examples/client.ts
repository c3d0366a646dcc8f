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
