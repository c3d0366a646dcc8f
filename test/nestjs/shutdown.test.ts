// enableShutdownHooks(): on SIGTERM the strategy stops taking requests, finishes those in
// flight, and RabbitRpcModule closes the connection; a separate process, since Nest ends it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { AMQP_URL, connectForTest, uniqueQueue } from '../helpers.js';
import { byName } from './helpers.js';

test('SIGTERM: the request in flight gets its reply, then the connection closes and the process ends', async () => {
  const queue = uniqueQueue('nest.shutdown');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './scripts/nest-decorators.mjs',
      'test/nestjs/fixtures/shutdown-app.ts',
      queue,
    ],
    { env: { ...process.env, AMQP_URL }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const lines = createInterface({ input: child.stdout });
  const seen: string[] = [];
  const waiters = new Map<string, () => void>();
  lines.on('line', (line) => {
    seen.push(line);
    waiters.get(line)?.();
  });
  const line = (text: string) =>
    seen.includes(text)
      ? Promise.resolve()
      : new Promise<void>((resolve) => waiters.set(text, resolve));

  await line('ready');
  const call = byName(await connectForTest(), queue);
  const reply = call('work', 500, { timeoutMs: 10_000 });
  await line('started');
  child.kill('SIGTERM');
  assert.equal(await reply, 'worked');
  await line('connection closed');
  const [code, signal] = await exited;
  assert.ok(code === 0 || signal === 'SIGTERM', `exit ${String(code)} ${String(signal)}`);
  assert.ok(seen.indexOf('connection closed') > seen.indexOf('started'));

  // Nobody consumes the queue any more.
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  const channel = await client.channel();
  const { consumerCount } = await channel.queueDeclare(queue, { passive: true });
  await client.close();
  assert.equal(consumerCount, 0);
});
