import { performance } from 'node:perf_hooks';
import { CONNECT_DEFAULTS, DEFAULT_STREAM_WINDOW, type AmqpProperties } from '../index.js';
import { formatMs, paint, type Style } from './output.js';
import type { CallObserver, PublishedRequest, ReceivedMessage } from './trace.js';

/** AMQP basic properties in the spec's names (as pika and the management UI show them). */
const PROPERTY_NAMES: ReadonlyArray<[keyof AmqpProperties, string]> = [
  ['contentType', 'content_type'],
  ['contentEncoding', 'content_encoding'],
  ['correlationId', 'correlation_id'],
  ['replyTo', 'reply_to'],
  ['expiration', 'expiration'],
  ['type', 'type'],
  ['messageId', 'message_id'],
  ['timestamp', 'timestamp'],
  ['deliveryMode', 'delivery_mode'],
  ['priority', 'priority'],
  ['userId', 'user_id'],
  ['appId', 'app_id'],
];

/**
 * `call --verbose`: what the call did, on stderr, as it happens. `*` lines are the CLI's
 * own (connect, timing), `>` lines the request as published, `<` lines what came back.
 * Everything printed was seen on the wire (see tracingTransport) or measured here.
 */
export class VerboseCall implements CallObserver {
  readonly #stream: NodeJS.WriteStream;
  #callStarted: number | undefined;
  #request: PublishedRequest | undefined;
  #reply: ReceivedMessage | undefined;
  #returned: ReceivedMessage | undefined;
  /** `call --stream`: items read so far, and when the first one was. */
  #items = 0;
  #firstItemAt: number | undefined;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
  }

  /** Before connecting. */
  connecting(url: string): void {
    this.#line('*', 'broker', url);
  }

  connected(ms: number): void {
    this.#line('*', 'connect', formatMs(ms, 2));
  }

  /** Just before the call: what the CLI asked for. */
  calling(queue: string, method: string | undefined, timeoutMs: number | undefined): void {
    this.#line('>', 'queue', queue);
    if (method !== undefined) this.#line('>', 'method', `${method} (sent as the AMQP type)`);
    this.#line(
      '*',
      'timeout',
      timeoutMs === undefined
        ? `${CONNECT_DEFAULTS.defaultTimeoutMs} ms (default)`
        : `${timeoutMs} ms`,
    );
    this.#callStarted = performance.now();
  }

  /** `call --stream`: the window asked for. */
  streaming(window: number | undefined): void {
    this.#line(
      '*',
      'window',
      window === undefined ? `${DEFAULT_STREAM_WINDOW} items (default)` : `${window} items`,
    );
  }

  published(request: PublishedRequest): void {
    if (this.#request !== undefined) return; // one call per CLI run; never two summaries
    this.#request = request;
    this.#line('>', 'body', bytes(request.bytes));
    this.#properties('>', request.properties);
  }

  replied(reply: ReceivedMessage): void {
    if (this.#reply !== undefined) return;
    this.#reply = reply;
    this.#line('<', 'body', bytes(reply.bytes));
    this.#properties('<', reply.properties);
  }

  returned(message: ReceivedMessage): void {
    if (this.#returned !== undefined) return;
    this.#returned = message;
    const code = message.replyCode === undefined ? '' : `${message.replyCode} `;
    this.#line('<', 'returned by the broker', `${code}${message.replyText ?? ''}`.trim());
  }

  /** After the call: the timing lines (the error itself is printed by printRpcError). */
  finished(): void {
    const ended = performance.now();
    const request = this.#request;
    if (request === undefined) {
      this.#notPublished();
    } else if (this.#reply !== undefined) {
      this.#line(
        '*',
        'round trip',
        `${formatMs(this.#reply.at - request.at, 2)} (publish to reply)`,
      );
    } else if (this.#returned !== undefined) {
      this.#returnedAfter(this.#returned, request);
    } else {
      this.#line('*', 'no reply after', formatMs(ended - request.at, 2));
    }
    this.#total('call', ended);
  }

  /** `call --stream`: an item was read (the `<` lines show only the first message). */
  item(): void {
    this.#items++;
    this.#firstItemAt ??= performance.now();
  }

  /** After a stream: when its first item came, how many came, and the whole stream's time. */
  streamFinished(): void {
    const ended = performance.now();
    const request = this.#request;
    if (request === undefined) {
      this.#notPublished();
    } else if (this.#returned !== undefined) {
      this.#returnedAfter(this.#returned, request);
    } else if (this.#firstItemAt !== undefined) {
      this.#line(
        '*',
        'first item',
        `${formatMs(this.#firstItemAt - request.at, 2)} (publish to first item)`,
      );
    }
    this.#line('*', 'items', String(this.#items));
    this.#total('stream', ended);
  }

  #notPublished(): void {
    this.#line('*', 'not published', 'the call failed before its request was sent');
  }

  #returnedAfter(returned: ReceivedMessage, request: PublishedRequest): void {
    this.#line('*', 'returned after', formatMs(returned.at - request.at, 2));
  }

  /** `<what>: 12.34 ms in all (1.23 ms before the publish)`. */
  #total(what: string, ended: number): void {
    const started = this.#callStarted ?? ended;
    const setup = this.#request === undefined ? undefined : this.#request.at - started;
    this.#line(
      '*',
      what,
      `${formatMs(ended - started, 2)} in all` +
        (setup === undefined ? '' : ` (${formatMs(setup, 2)} before the publish)`),
    );
  }

  #properties(marker: Marker, properties: AmqpProperties): void {
    for (const [key, name] of PROPERTY_NAMES) {
      const value = properties[key];
      if (value !== undefined) this.#line(marker, name, fieldText(value));
    }
    const headers = Object.entries(properties.headers ?? {});
    if (headers.length === 0) this.#line(marker, 'headers', '(none)');
    for (const [name, value] of headers) {
      let text = fieldText(value);
      if (name === DEADLINE_HEADER_NAME && typeof value === 'number' && Number.isFinite(value)) {
        text += ` (${new Date(value).toISOString()})`;
      }
      this.#line(marker, `header ${name}`, text);
    }
  }

  #line(marker: Marker, key: string, value: string): void {
    const stream = this.#stream;
    stream.write(
      `${paint(marker, MARKER_STYLE[marker], stream)} ${paint(`${key}:`, 'dim', stream)} ${value}\n`,
    );
  }
}

type Marker = '*' | '>' | '<';
const MARKER_STYLE: Record<Marker, Style> = { '*': 'dim', '>': 'cyan', '<': 'green' };

function bytes(count: number): string {
  return `${count} byte${count === 1 ? '' : 's'}`;
}

/** A property or header value as text: strings as they are, the rest as JSON. */
function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  try {
    return jsonOf(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** JSON.stringify typed honestly (undefined for undefined), with bigints as strings. */
function jsonOf(value: unknown): string | undefined {
  return JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === 'bigint' ? inner.toString() : inner,
  );
}

/** The deadline header of the wire protocol (docs/protocol.md, "Deadlines"), shown as a time. */
const DEADLINE_HEADER_NAME = 'rpc-deadline';
