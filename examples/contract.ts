// The contract: one module shared by the server and its clients. A client that wants no
// zod at run time can `import type { math } from './contract.js'` (see client.ts).
import { z } from 'zod';
import { defineService, method } from '../src/index.js'; // 'rabbit-rpc' in your project

const Pair = z.object({ a: z.number(), b: z.number() });

export const math = defineService('math', {
  add: { input: Pair, output: z.number() },
  divide: {
    input: Pair,
    output: z.number(),
    // The errors this method throws on purpose; clients see them typed.
    errors: { OUT_OF_RANGE: z.object({ divisor: z.number() }) },
  },
  // Typed without schemas: checked by the compiler only.
  ping: method<undefined, 'pong'>(),
  // A streaming method: the handler yields items, the client reads them with for await.
  // `output` is the shape of each item.
  fibonacci: {
    input: z.object({ count: z.number().int().min(0).max(1000) }),
    output: z.number(),
    stream: true,
  },
});
