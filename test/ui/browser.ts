// Headless Chromium from Debian (the `chromium` package), driven by playwright-core: nothing
// downloads a browser. Shared by the browser tests and scripts/ui-screenshots.mjs.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Browser extends AsyncDisposable {
  readonly context: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

/** Chromium, headless, in a fresh profile (removed on close). */
export async function launchBrowser(viewport = { width: 1360, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-ui-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= context.close().finally(() => rmSync(profile, { recursive: true, force: true })));
  return { context, page, close, [Symbol.asyncDispose]: close };
}

export interface UiProcess extends AsyncDisposable {
  /** The address as printed, token included. */
  readonly pageUrl: string;
  /** The address without the token. */
  readonly url: string;
  readonly token: string;
  readonly child: ChildProcess;
  /** What the process wrote on stdout and stderr so far. */
  output(): string;
  close(): Promise<void>;
}

/** Runs `node dist/cli.js ui` against `amqpUrl` and waits for the address it prints. */
export async function startUiCli(
  amqpUrl: string,
  args: readonly string[] = [],
): Promise<UiProcess> {
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist/cli.js'), 'ui', '--port', '0', '--url', amqpUrl, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const pageUrl = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const match = /rabbit-rpc ui on (\S+)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`rabbit-rpc ui exited ${code}: ${output}`)));
  });
  const [url = '', token = ''] = pageUrl.split('#token=');
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
    })());
  return {
    pageUrl,
    url,
    token,
    child,
    output: () => output,
    close,
    [Symbol.asyncDispose]: close,
  };
}
