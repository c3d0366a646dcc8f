// A contract and a plain handler for the ui tests and the docs' screenshots
// (scripts/ui-screenshots.mjs): a shop with a form-friendly method, a declared error, a
// streamed method whose items the caller may pace, and a plain queue.
import { z } from 'zod';
import { defineService, RpcError, type RpcConnection, type RpcServer } from '../../src/index.js';

export function shopContract(name: string) {
  return defineService(name, {
    quote: {
      input: z.object({
        sku: z.string().min(1),
        quantity: z.number().int().min(1).max(1000),
        currency: z.enum(['EUR', 'USD']),
        express: z.boolean().optional(),
      }),
      output: z.object({ sku: z.string(), total: z.number(), currency: z.string() }),
      errors: { OUT_OF_RANGE: z.object({ available: z.number() }) },
    },
    add: {
      input: z.object({ a: z.number(), b: z.number() }),
      output: z.number(),
      idempotent: true,
    },
    countdown: {
      input: z.object({ from: z.number().int().min(0).max(1000) }),
      output: z.number(),
      stream: true,
    },
  });
}

export interface ShopOptions {
  /** Awaited before each streamed item after the first: lets a test pace the stream. */
  readonly beforeItem?: (index: number, signal: AbortSignal) => Promise<void>;
  /** Told when a countdown ends, and whether it was cancelled. */
  readonly onStreamEnd?: (cancelled: boolean) => void;
  readonly prefetch?: number;
}

/** Serves the shop contract; the caller closes the server. */
export function serveShop(
  rpc: RpcConnection,
  name: string,
  options: ShopOptions = {},
): Promise<RpcServer> {
  return rpc.serve(
    shopContract(name),
    {
      quote: ({ sku, quantity, currency, express }) => {
        if (quantity > 100) {
          throw new RpcError('OUT_OF_RANGE', `only 100 of ${sku} in stock`, {
            details: { available: 100 },
          });
        }
        const total = Math.round(quantity * 9.99 * 100) / 100 + (express === true ? 15 : 0);
        return { sku, total, currency };
      },
      add: ({ a, b }) => a + b,
      async *countdown({ from }, ctx) {
        try {
          for (let n = from, index = 0; n >= 0; n--, index++) {
            if (index > 0 && options.beforeItem) await options.beforeItem(index, ctx.signal);
            yield n;
          }
        } finally {
          options.onStreamEnd?.(ctx.signal.aborted);
        }
      },
    },
    options.prefetch === undefined ? {} : { prefetch: options.prefetch },
  );
}
