// `rabbit-rpc services`, `describe`, `call --method` with the input check, and `asyncapi`,
// against the real broker at AMQP_URL: the servers are connections of this test process.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Parser } from '@asyncapi/parser';
import { z } from 'zod';
import { defineService, RpcError } from '../../src/index.js';
import { AMQP_URL, connectForTest, uniqueQueue } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli } from './child.js';

before(() => requireBuiltCli());

const work = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-cli-discovery-'));
after(() => rmSync(work, { recursive: true, force: true }));

function orders(queue: string) {
  return defineService(
    'orders',
    {
      place: {
        input: z.object({ sku: z.string().min(3), quantity: z.number().int().positive() }),
        output: z.object({ orderId: z.string() }),
        errors: { FAILED_PRECONDITION: z.object({ available: z.number() }) },
      },
      watch: { input: z.object({ orderId: z.string() }), output: z.string(), stream: true },
    },
    { queue },
  );
}

/** A contract server and a plain one; `placed` counts the handler's runs. */
async function serveBoth() {
  const contractQueue = uniqueQueue('cli.disc.orders');
  const plainQueue = uniqueQueue('cli.disc.plain');
  const server = await connectForTest();
  const runs = { placed: 0 };
  await server.serve(orders(contractQueue), {
    place: ({ sku }) => {
      runs.placed++;
      if (sku === 'gone') {
        throw new RpcError('FAILED_PRECONDITION', 'sold out', { details: { available: 0 } });
      }
      return { orderId: `o-${sku}` };
    },
    async *watch() {
      yield await Promise.resolve('new');
    },
  });
  await server.serve(plainQueue, () => 'plain');
  return { contractQueue, plainQueue, runs };
}

async function parses(text: string): Promise<void> {
  const { diagnostics } = await new Parser().parse(text);
  const problems = diagnostics.filter((d) => (d.severity as number) <= 1);
  assert.deepEqual(
    problems.map((d) => d.message),
    [],
  );
}

describe('services and describe', () => {
  test('services: one line per queue (queue, service, instances, methods); --json', async () => {
    const { contractQueue, plainQueue } = await serveBoth();
    const result = await runCli(['services', '--timeout-ms', '500'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    const lines = result.stdout.split('\n');
    assert.match(lines[0] ?? '', /^QUEUE +SERVICE +INSTANCES +METHODS$/);
    const line = (queue: string) => lines.find((l) => l.startsWith(queue + ' '))?.split(/ {2,}/);
    assert.deepEqual(line(contractQueue), [contractQueue, 'orders', '1', 'place, watch (stream)']);
    assert.deepEqual(line(plainQueue), [plainQueue, '-', '1', '-']);

    const json = await runCli(['services', '--json', '--timeout-ms', '500'], { AMQP_URL });
    assert.equal(json.code, EXIT.OK, json.stderr);
    const services = JSON.parse(json.stdout) as Array<{ queue: string; instances: unknown[] }>;
    assert.equal(services.find((s) => s.queue === contractQueue)?.instances.length, 1);
  });

  test('describe: methods with their schemas, then the instances; NOT_FOUND is exit 1', async () => {
    const { contractQueue } = await serveBoth();
    const result = await runCli(['describe', contractQueue, '--timeout-ms', '300'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.match(result.stdout, /^queue +test\.cli\.disc\.orders\./);
    assert.match(result.stdout, /\nservice +orders\n/);
    assert.match(
      result.stdout,
      /\nmethod place\n {2}input +\{"type":"object","properties":\{"sku"/,
    );
    assert.match(result.stdout, /\nmethod watch \(stream\)\n/);
    assert.match(result.stdout, /\n {2}error +FAILED_PRECONDITION \{"type":"object"/);
    assert.match(result.stdout, /\ninstances\n {2}amq\.gen-\S+ +rabbit-rpc 0\.1\.0 +since /);

    const missing = await runCli(
      ['describe', uniqueQueue('cli.disc.none'), '--timeout-ms', '200'],
      {
        AMQP_URL,
      },
    );
    assert.equal(missing.code, EXIT.ERROR);
    assert.match(missing.stderr, /^NOT_FOUND: no rabbit-rpc server of/);
    const usage = await runCli(['describe'], { AMQP_URL });
    assert.equal(usage.code, EXIT.USAGE);
  });
});

describe('call --method: the input checked against the described schema', () => {
  test('a mismatch: the schema issues, nothing sent, exit 1; --no-check sends it', async () => {
    const { contractQueue, runs } = await serveBoth();
    const bad = await runCli(
      ['call', contractQueue, '{"sku":"ab","quantity":1.5,"extra":true}', '--method', 'place'],
      { AMQP_URL },
    );
    assert.equal(bad.code, EXIT.ERROR);
    assert.match(
      bad.stderr,
      /^INVALID_ARGUMENT: the request does not match the input schema of place/,
    );
    const details = JSON.parse(/details: (.*)/.exec(bad.stderr)?.[1] ?? 'null') as Array<{
      path: string;
      message: string;
    }>;
    assert.deepEqual(details, [
      { path: '/sku', message: 'shorter than 3' },
      { path: '/quantity', message: 'expected integer, got number' },
    ]);
    assert.equal(runs.placed, 0, 'nothing was sent');

    const unchecked = await runCli(
      ['call', contractQueue, '{"sku":"ab","quantity":1}', '--method', 'place', '--no-check'],
      { AMQP_URL },
    );
    // The server's own validation answers instead.
    assert.equal(unchecked.code, EXIT.ERROR);
    assert.match(unchecked.stderr, /^INVALID_ARGUMENT: /);
    assert.doesNotMatch(unchecked.stderr, /does not match the input schema/);

    const good = await runCli(
      ['call', contractQueue, '{"sku":"tea","quantity":2}', '--method', 'place'],
      { AMQP_URL },
    );
    assert.equal(good.code, EXIT.OK, good.stderr);
    assert.equal(good.stdout, '{"orderId":"o-tea"}\n');
    assert.equal(runs.placed, 1);
  });

  test('no description (a plain server): called unchecked', async () => {
    const { plainQueue } = await serveBoth();
    const result = await runCli(['call', plainQueue, '1', '--method', 'anything'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '"plain"\n');
  });
});

describe('asyncapi', () => {
  test('<module> --out: the contracts it exports, a valid AsyncAPI 3.0 document', async () => {
    const out = path.join(work, 'shop.json');
    const result = await runCli(
      ['asyncapi', 'test/fixtures/shop-contracts.mjs', '--out', out, '--title', 'Shop'],
      { AMQP_URL },
    );
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '');
    const text = readFileSync(out, 'utf8');
    await parses(text);
    const document = JSON.parse(text) as {
      info: { title: string };
      channels: Record<string, unknown>;
      operations: Record<string, unknown>;
    };
    assert.equal(document.info.title, 'Shop');
    assert.deepEqual(Object.keys(document.operations).sort(), [
      'rpc.inventory.count',
      'rpc.orders.place',
      'rpc.orders.watch',
    ]);
  });

  test('--from-broker: the services that answer, on stdout', async () => {
    const { contractQueue } = await serveBoth();
    const result = await runCli(['asyncapi', '--from-broker', '--timeout-ms', '500'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.OK, result.stderr);
    await parses(result.stdout);
    const document = JSON.parse(result.stdout) as {
      channels: Record<string, { address: unknown }>;
    };
    assert.ok(Object.values(document.channels).some((c) => c.address === contractQueue));
  });

  test('usage errors: exit 2', async () => {
    for (const args of [
      ['asyncapi'],
      ['asyncapi', 'x.mjs', '--from-broker'],
      ['asyncapi', 'test/fixtures/no-such-module.mjs'],
      ['asyncapi', 'test/fixtures/processed-handler.mjs'],
    ]) {
      const result = await runCli(args, { AMQP_URL });
      assert.equal(result.code, EXIT.USAGE, `${args.join(' ')}: ${result.stderr}`);
    }
  });
});
