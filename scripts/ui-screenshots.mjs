// `node scripts/ui-screenshots.mjs`: the screenshots of docs/guides/ui.md, taken from the real
// page (dist/: build first), and the page's load time on loopback.
//
// Starts a private RabbitMQ node (rabbit-rpc/testing: the page lists only what this serves),
// serves the shop contract of test/ui/fixture.ts on two instances and a plain queue, calls
// them for a few seconds so the counters and the chart have something to show, runs
// `rabbit-rpc ui`, and drives headless Chromium (/usr/bin/chromium, playwright-core) through
// a call, an error and a stream, writing docs/images/ui-*.png. Then it reloads the page ten
// times and prints the navigation timings (median and max).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const images = path.join(root, 'docs/images');
const load = (file) => tsImport(path.join(root, file), import.meta.url);
const { connect } = await load('src/index.ts');
const { startPrivateBroker } = await load('src/testing/index.ts');
const { serveShop } = await load('test/ui/fixture.ts');
const { launchBrowser, startUiCli } = await load('test/ui/browser.ts');

const broker = await startPrivateBroker();
const url = broker.url;
const opened = [];
try {
  const first = await connect({ url, connectionName: 'shop 1' });
  const second = await connect({ url, connectionName: 'shop 2' });
  const client = await connect({ url, connectionName: 'traffic' });
  opened.push(client, second, first);
  const paced = { beforeItem: () => pause(250) };
  await serveShop(first, 'shop', paced);
  await serveShop(second, 'shop', paced);
  await first.serve('legacy.reports', (request) => ({ report: request, rows: 3 }));

  // Traffic: a few calls a second, some of them errors, until the screenshots are taken.
  let traffic = true;
  const shop = client.client((await load('test/ui/fixture.ts')).shopContract('shop'));
  const calling = (async () => {
    for (let i = 0; traffic; i++) {
      await Promise.allSettled([
        shop.add({ a: i, b: 1 }),
        shop.quote({ sku: `SKU-${i % 7}`, quantity: i % 9 === 0 ? 500 : 2, currency: 'EUR' }),
      ]);
      await pause(40 + 30 * Math.sin(i / 15));
    }
  })();

  const ui = await startUiCli(url, []);
  const browser = await launchBrowser({ width: 1360, height: 940 });
  try {
    const { page } = browser;
    await page.goto(ui.pageUrl);
    await page.locator('button.service[data-queue="rpc.shop"]').click();
    // Five refreshes: the chart has points to draw.
    await page.waitForFunction(
      // A function, not a string: the page's CSP forbids evaluating strings.
      () =>
        (globalThis.document.querySelector('.chart .line')?.getAttribute('points') ?? '').split(' ')
          .length >= 5,
      undefined,
      { timeout: 30_000 },
    );
    mkdirSync(images, { recursive: true });

    await page.locator('button.method[data-method="quote"]').click();
    await page.locator('input[name="sku"]').fill('SKU-42');
    await page.locator('input[name="quantity"]').fill('3');
    await page.locator('select[name="currency"]').selectOption({ label: '"EUR"' });
    await page.locator('input[name="express"]').check();
    await page.locator('#send').click();
    await page.locator('#result .outcome').getByText('OK').waitFor();
    await page.screenshot({ path: path.join(images, 'ui-call.png') });

    await page.locator('input[name="quantity"]').fill('500');
    await page.locator('#send').click();
    await page.locator('#result .outcome').getByText('OUT_OF_RANGE').waitFor();
    await page.locator('#result').screenshot({ path: path.join(images, 'ui-error.png') });

    await page.locator('button.method[data-method="countdown"]').click();
    await page.locator('input[name="from"]').fill('9');
    await page.locator('#send').click();
    await page.locator('#result ol.items li').nth(4).waitFor();
    await page.locator('.columns').screenshot({ path: path.join(images, 'ui-stream.png') });
    await page.locator('#result .outcome').waitFor({ timeout: 10_000 });

    traffic = false;
    await calling;

    // Load time on loopback: reloads of the page (the browser warm, the discovery apart).
    const timings = [];
    for (let i = 0; i < 10; i++) {
      await page.reload({ waitUntil: 'load' });
      const entry = JSON.parse(
        await page.evaluate('JSON.stringify(performance.getEntriesByType("navigation")[0])'),
      );
      timings.push(entry.loadEventEnd);
    }
    timings.sort((a, b) => a - b);
    const median = (timings[4] + timings[5]) / 2;
    console.log(
      `page load on loopback (10 reloads): median ${median.toFixed(1)} ms, ` +
        `max ${timings[9].toFixed(1)} ms (loadEventEnd)`,
    );
    console.log(
      `screenshots in ${path.relative(root, images)}/: ui-call.png ui-error.png ui-stream.png`,
    );
  } finally {
    await browser.close();
    await ui.close();
  }
} finally {
  for (const rpc of opened) await rpc.close();
  await broker.close();
}
