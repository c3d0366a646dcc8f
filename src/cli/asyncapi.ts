import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toAsyncApi, type AsyncApiSource } from '../asyncapi/index.js';
import { isServiceDefinition, type AnyService } from '../index.js';
import { UsageError, type AsyncApiArgs } from './args.js';
import { withConnection } from './discovery.js';
import { EXIT } from './output.js';

/**
 * `rabbit-rpc asyncapi`: an AsyncAPI 3.0 document (JSON) of the contracts a module exports,
 * or of the services found on the broker, on stdout or in `--out`.
 */
export async function runAsyncApi(args: AsyncApiArgs): Promise<number> {
  const options = args.title === undefined ? {} : { title: args.title };
  if (args.module !== undefined) {
    const document = await toAsyncApi(await loadContracts(args.module), options);
    await write(args.out, document);
    return EXIT.OK;
  }
  return withConnection(args.url, 'rabbit-rpc asyncapi', async (rpc, signal) => {
    const services: AsyncApiSource[] = await rpc.services(
      args.timeoutMs === undefined ? { signal } : { timeoutMs: args.timeoutMs, signal },
    );
    await write(args.out, await toAsyncApi(services, options));
    return EXIT.OK;
  });
}

/** Every contract the module exports (by any name), in export order. */
async function loadContracts(path: string): Promise<AnyService[]> {
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(resolve(process.cwd(), path)).href)) as Record<
      string,
      unknown
    >;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`cannot load module ${path}: ${why}`, 'asyncapi');
  }
  const contracts = [...new Set(Object.values(loaded).filter(isServiceDefinition))];
  if (contracts.length === 0) {
    throw new UsageError(`module ${path} exports no contract (defineService)`, 'asyncapi');
  }
  return contracts;
}

async function write(out: string | undefined, document: unknown): Promise<void> {
  const text = JSON.stringify(document, null, 2) + '\n';
  if (out === undefined) process.stdout.write(text);
  else await writeFile(out, text);
}
