// Type-level tests: a misspelt option in an object literal does not compile. (JavaScript
// callers get INVALID_ARGUMENT at run time instead: test/unit/option-names.test.ts.)
// Compiled by `npx tsc --noEmit -p tsconfig.json`; every `@ts-expect-error` line must fail.
import { connect, defineService, type RpcConnection } from '../../src/index.js';
import { startPrivateBroker } from '../../src/testing/index.js';
import { shop } from './fixtures-contract.js';

declare const rpc: RpcConnection;

// @ts-expect-error connect(): bogusOption is no option
void connect({ url: 'amqp://localhost', bogusOption: 1 });
// @ts-expect-error serve(): prefech is a typo of prefetch
void rpc.serve('q', () => 1, { prefech: 1 });
// @ts-expect-error call(): timeout is timeoutMs
void rpc.call('q', 1, { timeout: 200 });
// @ts-expect-error stream(): windw
void rpc.stream('q', 1, { windw: 2 });
// @ts-expect-error broadcast(): maximum is max
void rpc.broadcast('q', 1, { maximum: 2 });
// @ts-expect-error defineService(): queu
defineService('s', {}, { queu: 'x' });
// @ts-expect-error client(): validate
rpc.client(shop, { validate: true });
// @ts-expect-error startPrivateBroker(): amqpPrt
void startPrivateBroker({ amqpPrt: 1 });

// The right names compile.
void connect({ url: 'amqp://localhost', defaultTimeoutMs: 5 });
void rpc.serve('q', () => 1, { prefetch: 1 });
void rpc.call('q', 1, { timeoutMs: 200 });
void rpc.stream('q', 1, { window: 2 });
void rpc.call('q', 1, { method: 'add' });
void rpc.stream('q', 1, { method: 'tail', window: 2 });
// @ts-expect-error call(): method is a name, not a number
void rpc.call('q', 1, { method: 1 });
// @ts-expect-error call(): methodName is method
void rpc.call('q', 1, { methodName: 'add' });
void rpc.broadcast('q', 1, { max: 2 });
