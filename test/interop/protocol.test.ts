/**
 * The control plane of docs/protocol.md against pika peers written from that document alone
 * (test/fixtures/*_client.py, stream_server.py, pika_peer.py): streamed replies with credit,
 * cancellation (of a stream, and of a plain call through the control exchange), broadcast
 * and idempotent duplicates, each in both roles where the protocol has two. Runs Debian's
 * /usr/bin/python3, which has pika.
 */
/* eslint-disable @typescript-eslint/require-await -- async generators without await are the handler shape under test */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { assertCode, connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';
import { PYTHON, runToEnd, startPython, type Child } from '../cli/child.js';

failOnUnhandled();

before(() => {
  try {
    execFileSync(PYTHON, ['-c', 'import pika'], { stdio: 'pipe' });
  } catch {
    throw new Error(
      `${PYTHON} cannot import pika: install it with "sudo apt-get install -y python3-pika"`,
    );
  }
});

type Line = Record<string, unknown>;

/** The JSON lines a pika peer printed (pika_peer.emit). */
function jsonLines(stdout: string): Line[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Line);
}

/** Runs a pika client to its end and returns its JSON lines; fails on a non-zero exit. */
async function runPython(child: Child): Promise<Line[]> {
  const result = await runToEnd(child, 30_000);
  assert.equal(result.code, 0, `python failed:\n${result.stdout}\n${result.stderr}`);
  return jsonLines(result.stdout);
}

/** Resolves with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

const range = (count: number): number[] => Array.from({ length: count }, (_, n) => n);

describe('pika callers of rabbit-rpc servers', () => {
  test('a streamed reply with window 2: every item in order, kept going by credit', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.stream');
    await rpc.serve(queue, async function* (request: { count: number }) {
      for (let n = 0; n < request.count; n++) yield { n };
    });

    const lines = await runPython(
      startPython('stream_client.py', [queue, '2', JSON.stringify({ count: 7 })]),
    );
    assert.deepEqual(
      lines.filter((line) => 'seq' in line),
      range(7).map((n) => ({ seq: n, item: { n } })),
    );
    assert.deepEqual(lines.at(-1), { end: true, status: null, message: null });
    // Seven items through a window of two: the server went on only because credit came.
    assert.ok(lines.some((line) => 'credit' in line));
  });

  test("cancel to rpc-control-queue: the generator's finally runs, ctx.signal is CANCELLED", async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.streamcancel');
    const stopped = deferred<unknown>();
    await rpc.serve(queue, async function* (_request: unknown, ctx) {
      try {
        for (let n = 0; ; n++) yield { n };
      } finally {
        stopped.resolve(ctx.signal.reason);
      }
    });

    const lines = await runPython(startPython('stream_client.py', [queue, '2', '{}', '3']));
    assert.deepEqual(
      lines.filter((line) => 'seq' in line).map((line) => line['seq']),
      [0, 1, 2],
    );
    assert.match(String(lines.at(-1)?.['cancel']), /^amq\.gen-/);
    // Without the cancel the generator would wait for credit until the 30 s deadline.
    assertCode(await stopped.promise, 'CANCELLED');
  });

  test('cancel of a plain call through rabbit-rpc.control aborts the handler', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.cancel');
    const started = deferred();
    const reason = deferred<unknown>();
    await rpc.serve(queue, async (_request: unknown, ctx) => {
      started.resolve();
      const why = await aborted(ctx.signal);
      reason.resolve(why);
      throw why;
    });

    const client = startPython('cancel_client.py', [queue, '"work"'], 'pipe');
    await started.promise;
    client.writeLine('go');
    assertCode(await reason.promise, 'CANCELLED');
    // The server still answers the cancelled call, with what its handler threw.
    const lines = await runPython(client);
    assert.deepEqual(lines.at(-1), { reply: null, status: 'CANCELLED' });
  });

  test('broadcast: one reply from each of two serving connections', async () => {
    const queue = uniqueQueue('interop.broadcast');
    const [first, second] = await Promise.all([connectForTest(), connectForTest()]);
    await first.serve(queue, (request: string) => `first: ${request}`);
    await second.serve(queue, (request: string) => `second: ${request}`);

    // A broadcast has no end: the client collects for 3 s, generous on a loaded machine.
    const lines = await runPython(
      startPython('broadcast_client.py', [queue, '3000', JSON.stringify('status')]),
    );
    const replies = lines.filter((line) => 'instance' in line);
    assert.deepEqual(replies.map((line) => line['reply']).sort(), [
      'first: status',
      'second: status',
    ]);
    const instances = replies.map((line) => String(line['instance']));
    assert.equal(new Set(instances).size, 2);
    for (const instance of instances) assert.match(instance, /^amq\.gen-/);
    assert.ok(replies.every((line) => line['status'] === null));
    assert.deepEqual(lines.at(-1), { done: 2 });
  });

  test('broadcast to a queue nobody serves comes back (basic.return)', async () => {
    const rpc = await connectForTest();
    // Some server must have declared rabbit-rpc.control for the client to publish there.
    await rpc.serve(uniqueQueue('interop.broadcastexchange'), () => 'unused');
    const lines = await runPython(
      startPython('broadcast_client.py', [uniqueQueue('interop.nobody'), '1500', '"status"']),
    );
    assert.deepEqual(lines, [{ returned: true }]);
  });

  test('the same message_id three times: the handler runs once, every reply is equal', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.idempotent');
    let runs = 0;
    const server = await rpc.serve(queue, (request: string) => {
      runs++;
      return { request, run: runs };
    });

    const lines = await runPython(startPython('idempotent_client.py', [queue, '"charge 5"']));
    const reply = { reply: { request: 'charge 5', run: 1 }, status: null };
    assert.deepEqual(lines, [reply, reply, reply]);
    assert.equal(runs, 1);
    assert.equal(server.stats.deduplicated, 2);
  });
});

describe('rabbit-rpc calling a pika stream server', () => {
  /** Starts stream_server.py on `queue`; it prints {"ready"} once it consumes. */
  async function streamServer(queue: string): Promise<Child> {
    const server = startPython('stream_server.py', [queue]);
    await server.waitFor(/^\{"ready": "amq\.gen-/m, 'stdout');
    return server;
  }

  test('rpc.stream with window 2 reads every item in order', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.pystream');
    const server = await streamServer(queue);

    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, { count: 10 }, { window: 2, timeoutMs: 20_000 })) {
      items.push(item);
    }
    assert.deepEqual(
      items,
      range(10).map((n) => ({ n })),
    );

    await server.waitFor(/^\{"end": /m, 'stdout');
    const log = jsonLines(server.stdout);
    // The server stopped after the window (items 0 and 1) and went on once credit came.
    const waited = log.findIndex((line) => line['waiting'] === 2);
    const credited = log.findIndex((line) => 'credit' in line);
    const sentThird = log.findIndex((line) => line['sent'] === 2);
    assert.ok(waited !== -1 && waited < credited && credited < sentThird, server.stdout);
    server.kill();
  });

  test('leaving the loop early sends cancel to the server', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.pystreamcancel');
    const server = await streamServer(queue);

    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, { count: 1000 }, { window: 2 })) {
      items.push(item);
      if (items.length === 3) break;
    }
    assert.deepEqual(
      items,
      range(3).map((n) => ({ n })),
    );
    await server.waitFor(/^\{"cancelled": /m, 'stdout');
    server.kill();
  });

  test('rpc.call to the streaming server: FAILED_PRECONDITION', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('interop.pystreamcall');
    const server = await streamServer(queue);
    await assert.rejects(rpc.call(queue, { count: 1 }, { timeoutMs: 10_000 }), (error) => {
      assertCode(error, 'FAILED_PRECONDITION');
      return true;
    });
    server.kill();
  });
});
