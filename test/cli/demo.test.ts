// `rabbit-rpc demo` (npm run demo) works on any machine: on the broker that answers; else on
// a private RabbitMQ node it starts when rabbitmq-server is installed; else on the in-memory
// broker, saying so. (The first path is in cli.test.ts: "runs its calls".)
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXIT, requireBuiltCli, runCli } from './child.js';

/** Nothing listens on port 1: a refused connection, at once. */
const CLOSED_PORT = 'amqp://guest:s3cret@127.0.0.1:1';

before(() => requireBuiltCli());

/** The demo's outcomes, as in cli.test.ts: ten calls, each with its latency, none unexpected. */
function assertDemoRan(stdout: string): void {
  assert.match(stdout, /call "Hello World" → "Processed: Hello World" \(\d+\.\d ms\)/);
  assert.match(stdout, /→ INVALID_ARGUMENT: cannot divide by zero/);
  assert.match(stdout, /→ DEADLINE_EXCEEDED: /);
  assert.equal(stdout.match(/\(\d+\.\d ms\)/g)?.length, 10);
  assert.doesNotMatch(stdout, /unexpected/);
  assert.match(stdout, /Done: connection closed\./);
}

describe('demo without a broker', () => {
  test('RabbitMQ installed: a private node started for the demo, and stopped after', async () => {
    const baseDir = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-demo-test-'));
    after(() => rmSync(baseDir, { recursive: true, force: true }));
    // TMPDIR: the private node's folder goes there, so the test can see it removed.
    const result = await runCli(['demo'], { AMQP_URL: CLOSED_PORT, TMPDIR: baseDir }, 120_000);
    assert.equal(result.code, EXIT.OK, result.stderr + result.stdout);
    assert.match(result.stdout, /No RabbitMQ answered at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
    assert.match(
      result.stdout,
      /Started a private RabbitMQ node at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+/,
    );
    assert.doesNotMatch(result.stdout, /in-memory/);
    assert.doesNotMatch(result.stdout + result.stderr, /s3cret|guest:guest/);
    assertDemoRan(result.stdout);
    const left = readdirSync(baseDir).filter((name) => name.startsWith('rabbit-rpc-broker'));
    assert.deepEqual(left, [], 'the private node and its folder are gone');
  });

  test('RabbitMQ not installed: the in-memory broker, said plainly, with how to get a real one', async () => {
    const emptyBinDir = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-no-rabbitmq-'));
    after(() => rmSync(emptyBinDir, { recursive: true, force: true }));
    const result = await runCli(['demo'], { AMQP_URL: CLOSED_PORT, RABBITMQ_BIN_DIR: emptyBinDir });
    assert.equal(result.code, EXIT.OK, result.stderr + result.stdout);
    assert.match(result.stdout, /RabbitMQ is not installed here/);
    assert.match(result.stdout, /in-memory broker/);
    assert.match(result.stdout, /sudo apt-get install -y rabbitmq-server/);
    assert.match(result.stdout, /Connected to the in-memory broker/);
    assertDemoRan(result.stdout);
  });

  test('a broker that refuses the login is an error, not a reason to go elsewhere', async () => {
    const { AMQP_URL } = await import('../helpers.js');
    const wrong = new URL(AMQP_URL);
    wrong.username = 'no-such-user';
    wrong.password = 'wrong';
    const result = await runCli(['demo'], { AMQP_URL: wrong.toString() });
    assert.equal(result.code, EXIT.ERROR, result.stderr + result.stdout);
    assert.match(result.stderr, /^UNAUTHENTICATED: /);
    assert.doesNotMatch(result.stdout, /private|in-memory/);
  });
});
