// A contract used by the type tests: zod, valibot and arktype schemas, types-only methods,
// declared errors.
import { type } from 'arktype';
import * as v from 'valibot';
import { z } from 'zod';
import { defineService, method, typeOnly } from '../../src/index.js';

export const shop = defineService('shop', {
  // zod, with a transform: the client sends a string, the handler gets a number.
  add: {
    input: z.object({ a: z.number(), b: z.number(), note: z.string().optional() }),
    output: z.number(),
  },
  parse: { input: z.string().transform((s) => s.length), output: z.number() },
  // valibot
  greet: { input: v.object({ name: v.string() }), output: v.string() },
  // arktype
  area: { input: type({ w: 'number', h: 'number' }), output: type('number') },
  // types only
  ping: method<undefined, 'pong'>(),
  echo: method<{ text: string }, { text: string; at: number }>(),
  // declared errors
  get: {
    input: z.object({ id: z.string() }),
    output: z.object({ id: z.string(), name: z.string() }),
    errors: {
      NOT_FOUND: z.object({ id: z.string() }),
      FAILED_PRECONDITION: typeOnly<{ reason: 'locked' | 'deleted' }>(),
    },
  },
  remove: {
    ...method<{ id: string }, boolean>(),
    errors: { PERMISSION_DENIED: typeOnly<{ role: string }>() },
  },
});

export const custom = defineService(
  'custom',
  { ping: method<undefined, 'pong'>() },
  { queue: 'q.custom' },
);
