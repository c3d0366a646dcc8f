// examples/nestjs runs: the Nest microservice, called by the Nest caller and by the CLI.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { AMQP_URL, uniqueQueue } from '../helpers.js';

const run = promisify(execFile);
const NEST = ['--import', 'tsx', '--import', './scripts/nest-decorators.mjs'];

test('examples/nestjs: main.ts serves, caller.ts and the CLI call it, SIGTERM stops it', async () => {
  const queue = uniqueQueue('nest.example');
  const env = { ...process.env, AMQP_URL, MATH_QUEUE: queue };
  const server = spawn(process.execPath, [...NEST, 'examples/nestjs/main.ts'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(server, 'exit');
  try {
    const lines = createInterface({ input: server.stdout });
    for await (const line of lines) if (line.startsWith('serving')) break;

    const caller = await run(process.execPath, [...NEST, 'examples/nestjs/caller.ts'], { env });
    assert.match(caller.stdout, /^add via ClientProxy: 3$/m);
    assert.match(caller.stdout, /^divide via the typed client: 2.5$/m);
    assert.match(caller.stdout, /^divide by zero: OUT_OF_RANGE, divisor 0$/m);
    assert.match(caller.stdout, /^fibonacci: 0 1 1 2 3 5 8 13 21 34$/m);

    const cli = await run(
      process.execPath,
      ['dist/cli.js', 'call', queue, '{"a": 40, "b": 2}', '--method', 'add'],
      {
        env,
      },
    );
    assert.equal(cli.stdout.trim(), '42');
  } finally {
    server.kill('SIGTERM');
    await exited;
  }
});
