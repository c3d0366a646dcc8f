// Colour: only on a terminal, NO_COLOR turns it off, FORCE_COLOR turns it on.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { colourEnabled, paint } from '../../src/cli/output.js';
import { AMQP_URL, connectForTest, uniqueQueue } from '../helpers.js';
import { Child, CLI, requireBuiltCli, runCli, runToEnd } from './child.js';

const ESC = '\u001b[';
/** Neither variable set (the child helper sets NO_COLOR=1 unless told otherwise). */
const PLAIN = { NO_COLOR: '', FORCE_COLOR: '' };
const FORCED = { NO_COLOR: '', FORCE_COLOR: '1' };

before(() => requireBuiltCli());

describe('colourEnabled', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  const cases: Array<[string, { isTTY?: boolean }, NodeJS.ProcessEnv, boolean]> = [
    ['a terminal', tty, {}, true],
    ['a pipe', pipe, {}, false],
    ['a stream without isTTY', {}, {}, false],
    ['a terminal with NO_COLOR=1', tty, { NO_COLOR: '1' }, false],
    ['a terminal with an empty NO_COLOR (unset, per no-color.org)', tty, { NO_COLOR: '' }, true],
    ['a pipe with FORCE_COLOR=1', pipe, { FORCE_COLOR: '1' }, true],
    ['a pipe with FORCE_COLOR=3', pipe, { FORCE_COLOR: '3' }, true],
    ['a pipe with an empty FORCE_COLOR', pipe, { FORCE_COLOR: '' }, false],
    ['a terminal with FORCE_COLOR=0', tty, { FORCE_COLOR: '0' }, false],
    ['a terminal with FORCE_COLOR=false', tty, { FORCE_COLOR: 'false' }, false],
    [
      'NO_COLOR and FORCE_COLOR both: NO_COLOR wins',
      pipe,
      { NO_COLOR: '1', FORCE_COLOR: '1' },
      false,
    ],
  ];
  for (const [name, stream, env, expected] of cases) {
    test(`${name}: ${expected ? 'colour' : 'no colour'}`, () => {
      assert.equal(colourEnabled(stream, env), expected);
    });
  }

  test('paint wraps in ANSI codes only when colour is enabled', () => {
    const saved = { NO_COLOR: process.env['NO_COLOR'], FORCE_COLOR: process.env['FORCE_COLOR'] };
    delete process.env['NO_COLOR'];
    delete process.env['FORCE_COLOR'];
    try {
      assert.equal(paint('x', 'red', { isTTY: false }), 'x');
      assert.equal(paint('x', 'red', { isTTY: true }), `${ESC}31mx${ESC}0m`);
      assert.equal(paint('x', ['bold', 'red'], { isTTY: true }), `${ESC}1;31mx${ESC}0m`);
      assert.equal(paint('', 'red', { isTTY: true }), '');
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value !== undefined) process.env[key] = value;
      }
    }
  });
});

describe('the CLI', () => {
  test('piped output has no escape codes: call, call --verbose, ping, errors', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.colour.plain');
    await rpc.serve(queue, (request) => request);
    const runs = await Promise.all([
      runCli(['call', queue, '"hi"', '-v'], { AMQP_URL, ...PLAIN }),
      runCli(['ping', queue], { AMQP_URL, ...PLAIN }),
      runCli(['ping', uniqueQueue('cli.colour.none')], { AMQP_URL, ...PLAIN }),
      runCli(['call', 'q', '1', '--frobnicate'], PLAIN),
    ]);
    assert.deepEqual(
      runs.map((run) => run.code),
      [0, 0, 3, 2],
    );
    for (const run of runs) {
      assert.ok(!run.stdout.includes(ESC), run.stdout);
      assert.ok(!run.stderr.includes(ESC), run.stderr);
    }
  });

  test('FORCE_COLOR=1 colours stderr and sentences, never a reply or JSON', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.colour.forced');
    await rpc.serve(queue, (request) => request);

    const call = await runCli(['call', queue, '{"a":1}', '-v'], { AMQP_URL, ...FORCED });
    assert.equal(call.code, 0, call.stderr);
    assert.equal(call.stdout, '{"a":1}\n', 'the reply stays plain JSON');
    assert.ok(call.stderr.includes(`${ESC}36m>${ESC}0m`), call.stderr);

    const ping = await runCli(['ping', queue], { AMQP_URL, ...FORCED });
    assert.equal(ping.code, 0, ping.stderr);
    assert.ok(ping.stdout.includes(`${ESC}32m1 consumer${ESC}0m`), ping.stdout);

    const json = await runCli(['ping', queue, '--json'], { AMQP_URL, ...FORCED });
    assert.equal(json.code, 0, json.stderr);
    assert.ok(!json.stdout.includes(ESC), json.stdout);

    const missing = await runCli(['ping', uniqueQueue('cli.colour.gone')], {
      AMQP_URL,
      ...FORCED,
    });
    assert.equal(missing.code, 3);
    assert.ok(missing.stderr.startsWith(`${ESC}1;31mUNAVAILABLE${ESC}0m: `), missing.stderr);

    const usage = await runCli(['ping'], FORCED);
    assert.equal(usage.code, 2);
    assert.ok(usage.stderr.startsWith(`${ESC}1;31mrabbit-rpc:${ESC}0m `), usage.stderr);
  });

  test('NO_COLOR=1 wins over FORCE_COLOR=1', async () => {
    const result = await runCli(['ping', uniqueQueue('cli.colour.both')], {
      AMQP_URL,
      NO_COLOR: '1',
      FORCE_COLOR: '1',
    });
    assert.equal(result.code, 3);
    assert.match(result.stderr, /^UNAVAILABLE: /);
    assert.ok(!result.stderr.includes(ESC), result.stderr);
  });

  describe('on a terminal (script(1) gives the CLI a pseudo-terminal)', () => {
    /** Runs the CLI with stdout and stderr on a pty; returns what the terminal showed. */
    async function onTerminal(args: string[], env: Record<string, string>) {
      const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
      const child = new Child('script', ['-q', '-e', '-c', command, '/dev/null'], {
        AMQP_URL,
        ...env,
      });
      return runToEnd(child);
    }

    test('colour by default', async () => {
      const result = await onTerminal(['ping', uniqueQueue('cli.colour.tty')], PLAIN);
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.ok(result.stdout.includes(`${ESC}1;31mUNAVAILABLE${ESC}0m`), result.stdout);
    });

    test('none with NO_COLOR=1', async () => {
      const result = await onTerminal(['ping', uniqueQueue('cli.colour.tty.no')], {
        NO_COLOR: '1',
        FORCE_COLOR: '',
      });
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.match(result.stdout, /^UNAVAILABLE: /);
      assert.ok(!result.stdout.includes(ESC), result.stdout);
    });

    test('none with FORCE_COLOR=0', async () => {
      const result = await onTerminal(['ping', uniqueQueue('cli.colour.tty.zero')], {
        NO_COLOR: '',
        FORCE_COLOR: '0',
      });
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.ok(!result.stdout.includes(ESC), result.stdout);
    });
  });
});
