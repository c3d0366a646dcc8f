// The page in a real browser (issue 18): headless Chromium from Debian driven by
// playwright-core, against `rabbit-rpc ui` (dist/cli.js) and services on the real broker. The
// page lists a served contract, calls a method from the generated form and shows the reply,
// shows an error code, shows a streamed reply item by item and stops one, broadcasts, keeps
// a history that runs again; and it loads in well under a second on loopback.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AMQP_URL,
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
  uniqueServiceName,
} from '../helpers.js';
import { launchBrowser, startUiCli } from './browser.js';
import { serveShop } from './fixture.js';

failOnUnhandled();

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const shop = uniqueServiceName('ui-page');
const shopQueue = `rpc.${shop}`;
const plainQueue = uniqueQueue('ui-page-plain');
/** The stream's next item waits for this: the test releases items one at a time. */
let nextItem = deferred();
let streamEnded = deferred<boolean>();

const servers = await connectForTest({ connectionName: 'ui page test services' });
const second = await connectForTest({ connectionName: 'ui page test second instance' });
await serveShop(servers, shop, {
  beforeItem: async (_index, signal) => {
    const gate = nextItem;
    await Promise.race([
      gate.promise,
      new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
    ]);
  },
  onStreamEnd: (cancelled) => streamEnded.resolve(cancelled),
});
await servers.serve(plainQueue, () => 'first');
await second.serve(plainQueue, () => 'second');

const ui = await startUiCli(AMQP_URL);
after(() => ui.close());
const browser = await launchBrowser();
after(() => browser.close());
const { page } = browser;
const pageErrors: string[] = [];
page.on('pageerror', (error) => pageErrors.push(error.message));
page.on('console', (message) => {
  if (message.type() === 'error') pageErrors.push(message.text());
});

const result = (selector: string) => page.locator(`#result ${selector}`);

test('the page loads in well under a second and lists the served contract', async () => {
  await page.goto(ui.pageUrl);
  // Evaluated as text: the page's DOM types are not this file's (Node's).
  const timing = JSON.parse(
    await page.evaluate<string>('JSON.stringify(performance.getEntriesByType("navigation")[0])'),
  ) as { domContentLoadedEventEnd: number; loadEventEnd: number } | undefined;
  assert.ok(timing !== undefined);
  // A first load in a fresh browser: ~350 ms here (most of it the browser starting up);
  // the bound leaves room for a loaded CI machine.
  process.stdout.write(
    `# page load on loopback: DOMContentLoaded ${timing.domContentLoadedEventEnd.toFixed(0)} ms, ` +
      `load ${timing.loadEventEnd.toFixed(0)} ms\n`,
  );
  assert.ok(timing.loadEventEnd < 1_000, `load took ${timing.loadEventEnd} ms`);
  // The token left the address bar.
  assert.doesNotMatch(page.url(), /token/);
  await page.locator(`button.service[data-queue="${shopQueue}"]`).click();
  await page.locator('button.method[data-method="quote"]').waitFor();
  await page.locator('button.method[data-method="countdown"] .badge').getByText('stream').waitFor();
  assert.match(await page.locator('details.schema-input pre').innerText(), /"quantity"/);
  await page.locator('#instances tbody tr').first().waitFor();
  assert.equal(await page.locator('#instances tbody tr').count(), 1);
});

test('a method called from the generated form: the reply and its latency', async () => {
  await page.locator('button.method[data-method="quote"]').click();
  await page.locator('input[name="sku"]').fill('A-1');
  await page.locator('input[name="quantity"]').fill('3');
  await page.locator('select[name="currency"]').selectOption({ label: '"EUR"' });
  // The JSON follows the form, and is checked against the schema as it changes.
  assert.deepEqual(JSON.parse(await page.locator('#json-editor').inputValue()), {
    sku: 'A-1',
    quantity: 3,
    currency: 'EUR',
  });
  await page.locator('#issues').getByText('matches the input schema').waitFor();
  await page.locator('#send').click();
  await result('.outcome').getByText('OK').waitFor();
  assert.deepEqual(JSON.parse(await result('pre.reply').innerText()), {
    sku: 'A-1',
    total: 29.97,
    currency: 'EUR',
  });
  assert.match(await result('.latency').innerText(), /\d+(\.\d)? ms/);
});

test('JSON that does not match the schema is flagged as you type', async () => {
  await page.locator('#json-editor').fill('{"sku": "A-1", "quantity": "three"}');
  await page.locator('#issues').getByText('/quantity: expected integer, got string').waitFor();
  await page.locator('#issues').getByText('missing required property "currency"').waitFor();
  await page.locator('#json-editor').fill('{"sku": ');
  await page.locator('#issues li.bad').getByText('not JSON').waitFor();
});

test('an error reply: its code, message and details', async () => {
  await page
    .locator('#json-editor')
    .fill(JSON.stringify({ sku: 'A-1', quantity: 500, currency: 'USD' }));
  await page.locator('#send').click();
  await result('.outcome').getByText('OUT_OF_RANGE').waitFor();
  assert.equal(await result('.message').innerText(), 'only 100 of A-1 in stock');
  assert.deepEqual(JSON.parse(await result('pre.details').innerText()), { available: 100 });
});

test('a streamed reply shows item by item, and ends', async () => {
  nextItem = deferred();
  streamEnded = deferred<boolean>();
  await page.locator('button.method[data-method="countdown"]').click();
  await page.locator('input[name="from"]').fill('3');
  await page.locator('#send').click();
  const items = result('ol.items li');
  for (let shown = 1; shown <= 4; shown++) {
    // Item `shown` is on the page while the next one is still held on the server.
    await items.nth(shown - 1).waitFor();
    assert.equal(await items.count(), shown);
    assert.equal(
      await items
        .nth(shown - 1)
        .locator('code')
        .innerText(),
      String(4 - shown),
    );
    if (shown < 4) assert.equal(await result('.outcome').count(), 0, 'not ended yet');
    const released = nextItem;
    nextItem = deferred();
    released.resolve();
  }
  await result('.outcome').getByText('OK').waitFor();
  assert.match(await result('.count').innerText(), /4 items/);
  assert.equal(await streamEnded.promise, false);
});

test('Stop cancels a stream on the server', async () => {
  nextItem = deferred();
  streamEnded = deferred<boolean>();
  await page.locator('input[name="from"]').fill('1000');
  await page.locator('#send').click();
  await result('ol.items li').first().waitFor();
  await page.locator('#stop').click();
  await result('.outcome').getByText('STOPPED').waitFor();
  assert.equal(await streamEnded.promise, true, 'the handler saw its signal abort');
});

test('the history keeps the calls and runs one again', async () => {
  const rows = page.locator('table.history tbody tr');
  assert.equal(await rows.count(), 4);
  assert.match(await rows.nth(3).innerText(), /quote[\s\S]*OK/);
  await rows.nth(3).locator('button.rerun').click();
  await page.locator('table.history tbody tr').nth(4).waitFor();
  assert.match(await rows.first().innerText(), /quote[\s\S]*OK/);
  await result('.outcome').getByText('OK').waitFor();
  // Kept across a reload (localStorage); the token too (this tab's sessionStorage).
  await page.reload();
  await page.locator(`button.service[data-queue="${shopQueue}"]`).click();
  assert.equal(await page.locator('table.history tbody tr').count(), 5);
});

test('any queue with raw JSON: a broadcast shows one row per instance', async () => {
  await page.locator('#raw-queue-name').fill(plainQueue);
  await page.locator('#raw-queue button').click();
  await page.locator('#composer').getByText('Raw call').waitFor();
  await page.locator('#json-editor').fill('"status"');
  await page.locator('#mode').selectOption('broadcast');
  await page.locator('#send').click();
  await result('table.broadcast tbody tr').nth(1).waitFor();
  const replies = await result('table.broadcast tbody tr code').allInnerTexts();
  assert.deepEqual(replies.sort(), ['"first"', '"second"']);
  await page.locator('#mode').selectOption('call');
  await page.locator('#send').click();
  await result('pre.reply').waitFor();
});

test('Copy as CLI: the same call as a rabbit-rpc command line, which the CLI runs', async () => {
  // A raw broadcast, with a quote in the request (shell-quoted).
  await page.locator('#json-editor').fill('{"note": "it\'s"}');
  await page.locator('#mode').selectOption('broadcast');
  await page.locator('#copy-cli').click();
  assert.equal(
    await page.locator('#cli-command').innerText(),
    `rabbit-rpc broadcast ${plainQueue} '{"note":"it'\\''s"}' --timeout-ms 10000`,
  );
  // A contract method: --method, and no credentials (the page has none).
  await page.locator(`button.service[data-queue="${shopQueue}"]`).click();
  await page.locator('button.method[data-method="quote"]').click();
  await page
    .locator('#json-editor')
    .fill(JSON.stringify({ sku: 'A-1', quantity: 2, currency: 'EUR' }));
  await page.locator('#copy-cli').click();
  const command = await page.locator('#cli-command').innerText();
  assert.equal(
    command,
    `rabbit-rpc call ${shopQueue} '{"sku":"A-1","quantity":2,"currency":"EUR"}' --method quote --timeout-ms 10000`,
  );
  // The line works: run by a shell, with the CLI of this build and the broker's URL added.
  const { stdout } = await run(
    'sh',
    ['-c', `${command.replace(/^rabbit-rpc /, 'node "$CLI" ')} --url "$URL"`],
    {
      env: { ...process.env, CLI: path.join(ROOT, 'dist/cli.js'), URL: AMQP_URL },
    },
  );
  assert.deepEqual(JSON.parse(stdout), { sku: 'A-1', total: 19.98, currency: 'EUR' });
});

test('no credentials in the page or the server’s output; no page errors', async () => {
  const url = new URL(AMQP_URL);
  const html = await page.content();
  for (const secret of [url.username, url.password].filter(Boolean)) {
    assert.ok(!html.includes(secret), `"${secret}" is on the page`);
    assert.ok(!ui.output().includes(`${secret}@`), 'no credentials in the output');
    assert.ok(!ui.output().includes(`:${url.password}`), 'no password in the output');
  }
  assert.deepEqual(pageErrors, []);
});
