import {
  describeService,
  ERROR_CODES,
  isServiceDefinition,
  RpcError,
  type AnyService,
  type ContractDescription,
  type JsonSchema,
  type MethodDescription,
  type ServiceDescription,
} from '../index.js';
import { checkOptionNames, optionNames } from '../option-names.js';

/** Options of {@link toAsyncApi}. */
export interface AsyncApiOptions {
  /** `info.title`. @default 'rabbit-rpc services' */
  title?: string;
  /** `info.version`: the version of the API described (not of rabbit-rpc). @default '1.0.0' */
  version?: string;
  /** `info.description`. */
  description?: string;
  /**
   * The broker, as the document's one server: `host` is `host:port`, `vhost` the virtual
   * host (`/` by default). Omitted: the document names no server.
   */
  server?: { host: string; protocol?: 'amqp' | 'amqps'; vhost?: string };
}

/** What {@link toAsyncApi} describes: contracts, or services found by `rpc.services()`. */
export type AsyncApiSource = AnyService | ContractDescription | ServiceDescription;

/** An AsyncAPI 3.0.0 document, as plain JSON (write it with `JSON.stringify`). */
export interface AsyncApiDocument {
  readonly asyncapi: '3.0.0';
  readonly info: {
    readonly title: string;
    readonly version: string;
    readonly description?: string;
  };
  readonly [key: string]: unknown;
}

const OPTION_NAMES = optionNames({
  title: true,
  version: true,
  description: true,
  server: true,
} satisfies Record<keyof AsyncApiOptions, true>);
const BINDING_VERSION = '0.3.0';
/** The runtime expressions of the request/reply pair (AMQP properties, as the headers of the message). */
const REPLY_TO = '$message.header#/reply_to';
const CORRELATION_ID = { location: '$message.header#/correlation_id' };

/**
 * An AsyncAPI 3.0 document of rabbit-rpc services (docs/guides/discovery.md): a channel per
 * service queue with its AMQP binding, an operation per method (`receive`, from the server's
 * side) with its `reply` (address from `reply_to`, correlation from `correlation_id`),
 * request, reply and error messages with their JSON Schemas and headers. Streaming methods
 * carry the `x-rabbit-rpc-stream` extension: their reply is a sequence of item messages
 * closed by an end message, which AsyncAPI 3.0's one reply cannot say by itself.
 *
 * @throws RpcError INVALID_ARGUMENT for bad options or sources.
 */
export async function toAsyncApi(
  services: readonly AsyncApiSource[],
  options: AsyncApiOptions = {},
): Promise<AsyncApiDocument> {
  checkOptions(options);
  const untrusted: unknown = services; // JavaScript callers can pass anything
  if (!Array.isArray(untrusted)) invalid('services must be an array');
  const described: Described[] = [];
  for (const source of untrusted as unknown[]) described.push(await normalise(source));
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const taken = new Set<string>();
  for (const service of described.sort((a, b) => (a.queue < b.queue ? -1 : 1))) {
    const id = uniqueId(service.queue, taken);
    addService(service, id, uniqueId(`${service.queue}.reply`, taken), channels, operations);
  }
  const info: { title: string; version: string; description?: string } = {
    title: options.title ?? 'rabbit-rpc services',
    version: options.version ?? '1.0.0',
  };
  if (options.description !== undefined) info.description = options.description;
  const document: Record<string, unknown> = { asyncapi: '3.0.0', info };
  if (options.server) {
    const server: Record<string, unknown> = {
      host: options.server.host,
      protocol: options.server.protocol ?? 'amqp',
      protocolVersion: '0.9.1',
    };
    if (options.server.vhost !== undefined) server['pathname'] = options.server.vhost;
    document['servers'] = { broker: server };
  }
  document['defaultContentType'] = 'application/json';
  document['channels'] = channels;
  document['operations'] = operations;
  return document as unknown as AsyncApiDocument;
}

interface Described {
  readonly queue: string;
  readonly service: string | undefined;
  readonly methods: readonly MethodDescription[];
}

async function normalise(source: unknown): Promise<Described> {
  if (typeof source !== 'object' || source === null) invalid('each service must be an object');
  if (isServiceDefinition(source)) {
    const contract = await describeService(source);
    return { queue: contract.queue, service: contract.service, methods: contract.methods };
  }
  const { queue, methods, service } = source as Partial<ServiceDescription>;
  if (typeof queue !== 'string' || !Array.isArray(methods)) {
    invalid('each service must be a contract, or a description from rpc.services()');
  }
  return { queue, service, methods };
}

function addService(
  service: Described,
  id: string,
  replyChannel: string,
  channels: Record<string, unknown>,
  operations: Record<string, unknown>,
): void {
  const requests: Record<string, unknown> = {};
  const replies: Record<string, unknown> = {};
  const title = service.service ?? service.queue;
  // A plain server (no contract): one operation, any JSON in and out, no `type`.
  const methods: Array<MethodDescription | undefined> =
    service.methods.length > 0 ? [...service.methods] : [undefined];
  for (const method of methods) {
    const name = method ? safe(method.name) : 'call';
    requests[`${name}.request`] = requestMessage(method);
    replies[`${name}.reply`] = replyMessage(method);
    if (method?.stream) replies[`${name}.end`] = endMessage(method);
    replies[`${name}.error`] = errorMessage(method);
    const reply: Array<{ $ref: string }> = [
      { $ref: `#/channels/${replyChannel}/messages/${name}.reply` },
    ];
    if (method?.stream) reply.push({ $ref: `#/channels/${replyChannel}/messages/${name}.end` });
    reply.push({ $ref: `#/channels/${replyChannel}/messages/${name}.error` });
    const operation: Record<string, unknown> = {
      action: 'receive',
      channel: { $ref: `#/channels/${id}` },
      title: method ? `${title}.${method.name}` : `${title} (any request)`,
      summary: method
        ? `${method.stream ? 'Streams' : 'Answers'} ${title}.${method.name}${method.idempotent ? ' (idempotent)' : ''}`
        : 'A plain rabbit-rpc handler: no contract, so no schema',
      messages: [{ $ref: `#/channels/${id}/messages/${name}.request` }],
      bindings: { amqp: { ack: true, bindingVersion: BINDING_VERSION } },
      reply: {
        address: {
          location: REPLY_TO,
          description: "The caller's reply queue, from the request's `reply_to` property.",
        },
        channel: { $ref: `#/channels/${replyChannel}` },
        messages: reply,
      },
    };
    if (method?.stream) {
      operation['x-rabbit-rpc-stream'] = {
        description:
          'A streamed reply: item messages (rpc-stream: item, in rpc-stream-seq order), each granted by the caller\'s credit, then one end message (rpc-stream: end). See docs/protocol.md, "Streamed replies".',
        item: { $ref: `#/channels/${replyChannel}/messages/${name}.reply` },
        end: { $ref: `#/channels/${replyChannel}/messages/${name}.end` },
      };
    }
    operations[uniqueOperationId(`${id}.${name}`, operations)] = operation;
  }
  channels[id] = {
    address: service.queue,
    title,
    description: service.service
      ? `The queue of service "${service.service}". The method is the AMQP \`type\` property.`
      : 'A queue served by a plain rabbit-rpc handler.',
    messages: requests,
    bindings: {
      amqp: {
        is: 'queue',
        // Durability is the server's option, known to neither the contract nor its answer.
        queue: { name: service.queue, exclusive: false },
        bindingVersion: BINDING_VERSION,
      },
    },
  };
  channels[replyChannel] = {
    address: null,
    title: `${title} replies`,
    description:
      "The caller's reply queue (any queue, or Direct Reply-to), named by each request's `reply_to`; replies are published to it through the default exchange.",
    messages: replies,
  };
}

function requestMessage(method: MethodDescription | undefined): Record<string, unknown> {
  const headers: Record<string, unknown> = {
    'rpc-deadline': {
      type: 'integer',
      description: "The caller's absolute deadline, Unix epoch milliseconds.",
    },
  };
  if (method?.stream) {
    headers['rpc-stream-window'] = {
      type: 'integer',
      minimum: 1,
      description: 'Items the server may send before the caller grants more credit.',
    };
  }
  const message: Record<string, unknown> = {
    name: method ? method.name : 'request',
    title: method ? `${method.name} request` : 'request',
    contentType: 'application/json',
    correlationId: CORRELATION_ID,
    headers: { type: 'object', properties: headers },
    payload: method?.input ?? anyJson(method),
  };
  if (method)
    message['bindings'] = { amqp: { messageType: method.name, bindingVersion: BINDING_VERSION } };
  return message;
}

function replyMessage(method: MethodDescription | undefined): Record<string, unknown> {
  const message: Record<string, unknown> = {
    name: method ? `${method.name}.${method.stream ? 'item' : 'reply'}` : 'reply',
    title: method?.stream ? `${method.name} stream item` : 'reply',
    contentType: 'application/json',
    correlationId: CORRELATION_ID,
    payload: method?.output ?? anyJson(method),
  };
  if (method?.stream) {
    message['headers'] = {
      type: 'object',
      required: ['rpc-stream', 'rpc-stream-seq'],
      properties: {
        'rpc-stream': { const: 'item' },
        'rpc-stream-seq': { type: 'integer', minimum: 0 },
        'rpc-control-queue': {
          type: 'string',
          description: "The answering instance's control queue: where credit and cancels go.",
        },
      },
    };
  }
  return message;
}

function endMessage(method: MethodDescription): Record<string, unknown> {
  return {
    name: `${method.name}.end`,
    title: `${method.name} stream end`,
    correlationId: CORRELATION_ID,
    headers: {
      type: 'object',
      required: ['rpc-stream'],
      properties: {
        'rpc-stream': { const: 'end' },
        'rpc-control-queue': { type: 'string' },
        'rpc-status': statusSchema(),
        'rpc-message': { type: 'string' },
      },
    },
    payload: { description: 'Empty; on failure, the error details.' },
  };
}

function errorMessage(method: MethodDescription | undefined): Record<string, unknown> {
  const declared = method?.errors ?? [];
  const details = declared.filter((error) => error.details !== undefined);
  return {
    name: method ? `${method.name}.error` : 'error',
    title: 'error reply',
    summary: declared.length
      ? `Declared errors: ${declared.map((error) => error.code).join(', ')}; any other code may come too.`
      : 'Any RpcError code.',
    contentType: 'application/json',
    correlationId: CORRELATION_ID,
    headers: {
      type: 'object',
      required: ['rpc-status', 'rpc-message'],
      properties: {
        'rpc-status': statusSchema(),
        'rpc-message': { type: 'string', description: 'The error message.' },
      },
    },
    payload:
      details.length > 0
        ? {
            description: 'The error details; for a declared error, its details schema.',
            anyOf: [...details.map((error) => error.details as JsonSchema), {}],
          }
        : { description: 'The error details, if any.' },
  };
}

function statusSchema(): Record<string, unknown> {
  return { type: 'string', enum: [...ERROR_CODES], description: 'The RpcError code.' };
}

function anyJson(method: MethodDescription | undefined): Record<string, unknown> {
  return {
    description: method
      ? 'No JSON Schema: the contract gives this shape as typeOnly, or its schema has none.'
      : 'Any JSON value.',
  };
}

/** AsyncAPI ids (component and map keys) are `[A-Za-z0-9._-]`. */
function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

function uniqueId(queue: string, taken: Set<string>): string {
  let id = safe(queue);
  for (let n = 2; taken.has(id); n++) id = `${safe(queue)}_${n}`;
  taken.add(id);
  return id;
}

function uniqueOperationId(id: string, operations: Record<string, unknown>): string {
  let unique = id;
  for (let n = 2; unique in operations; n++) unique = `${id}_${n}`;
  return unique;
}

function checkOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) invalid('options must be an object');
  checkOptionNames(options, OPTION_NAMES, 'toAsyncApi()');
  const { title, version, description, server } = options as AsyncApiOptions;
  for (const [name, value] of Object.entries({ title, version, description })) {
    if (value !== undefined && typeof value !== 'string') invalid(`${name} must be a string`);
  }
  if (server !== undefined && (typeof server !== 'object' || typeof server.host !== 'string')) {
    invalid('server must be { host, protocol?, vhost? }');
  }
}

function invalid(message: string): never {
  throw new RpcError('INVALID_ARGUMENT', message);
}
