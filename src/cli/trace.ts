import { performance } from 'node:perf_hooks';
import type {
  AmqpChannelLike,
  AmqpClientLike,
  AmqpConsumerLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
  AmqpTransport,
} from '../index.js';

/** A request as it was handed to the broker. */
export interface PublishedRequest {
  /** `performance.now()` at the publish. */
  readonly at: number;
  readonly queue: string;
  readonly bytes: number;
  readonly properties: AmqpProperties;
}

/** A reply (or a returned request) as it came from the broker. */
export interface ReceivedMessage {
  readonly at: number;
  readonly bytes: number;
  readonly properties: AmqpProperties;
  /** For a request the broker returned (basic.return): its reply code and text. */
  readonly replyCode?: number | undefined;
  readonly replyText?: string | undefined;
}

/** What a {@link tracingTransport} tells about the one call a `call --verbose` makes. */
export interface CallObserver {
  published(request: PublishedRequest): void;
  /** The reply whose correlation id is the request's. */
  replied(reply: ReceivedMessage): void;
  /** The request came back from the broker unrouted (mandatory publish, basic.return). */
  returned(message: ReceivedMessage): void;
}

/**
 * Wraps a transport (the `transport` option of `connect()`) so that `observer` sees the
 * request as published and its reply or return as received: the real AMQP properties on
 * the wire, which neither the public API nor a call interceptor exposes (the correlation
 * id, reply_to, expiration and rpc-deadline are set below the interceptors). It only
 * watches: every call goes through to the real channel unchanged.
 */
export function tracingTransport(inner: AmqpTransport, observer: CallObserver): AmqpTransport {
  return async (url, options) => new TracedClient(await inner(url, options), observer);
}

class TracedClient implements AmqpClientLike {
  readonly #inner: AmqpClientLike;
  readonly #observer: CallObserver;
  /** Correlation ids of the requests published on any of its channels (replies arrive on another). */
  readonly #sent = new Set<string>();

  constructor(inner: AmqpClientLike, observer: CallObserver) {
    this.#inner = inner;
    this.#observer = observer;
  }

  get closed(): boolean {
    return this.#inner.closed;
  }
  get blocked(): string | undefined {
    return this.#inner.blocked;
  }
  get onblocked(): ((reason: string) => void) | undefined {
    return this.#inner.onblocked;
  }
  set onblocked(listener: ((reason: string) => void) | undefined) {
    this.#inner.onblocked = listener;
  }
  get onunblocked(): (() => void) | undefined {
    return this.#inner.onunblocked;
  }
  set onunblocked(listener: (() => void) | undefined) {
    this.#inner.onunblocked = listener;
  }
  get ondisconnect(): ((error?: Error) => void) | undefined {
    return this.#inner.ondisconnect;
  }
  set ondisconnect(listener: ((error?: Error) => void) | undefined) {
    this.#inner.ondisconnect = listener;
  }

  async channel(): Promise<AmqpChannelLike> {
    return new TracedChannel(await this.#inner.channel(), this.#observer, this.#sent);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

class TracedChannel implements AmqpChannelLike {
  readonly #inner: AmqpChannelLike;
  readonly #observer: CallObserver;
  readonly #sent: Set<string>;

  constructor(inner: AmqpChannelLike, observer: CallObserver, sent: Set<string>) {
    this.#inner = inner;
    this.#observer = observer;
    this.#sent = sent;
  }

  get closed(): boolean {
    return this.#inner.closed;
  }
  get connection(): unknown {
    return this.#inner.connection;
  }

  // The caller assigns its return handler; the real channel calls the wrapped one.
  get onReturn(): (message: AmqpMessageLike) => void {
    return (message) => {
      this.#inner.onReturn(message);
    };
  }
  set onReturn(handler: (message: AmqpMessageLike) => void) {
    this.#inner.onReturn = (message: AmqpMessageLike) => {
      if (this.#isOurs(message)) this.#observer.returned(received(message));
      handler(message);
    };
  }

  queueDeclare(
    name: string,
    params: { durable?: boolean; autoDelete?: boolean; exclusive?: boolean; passive?: boolean },
    args?: Record<string, AmqpField>,
  ): Promise<{ name: string; messageCount: number; consumerCount: number }> {
    return this.#inner.queueDeclare(name, params, args);
  }
  queueDelete(name: string): Promise<unknown> {
    return this.#inner.queueDelete(name);
  }
  exchangeDeclare(
    name: string,
    type: 'direct',
    params: { durable?: boolean; autoDelete?: boolean; passive?: boolean },
  ): Promise<void> {
    return this.#inner.exchangeDeclare(name, type, params);
  }
  queueBind(queue: string, exchange: string, routingKey: string): Promise<void> {
    return this.#inner.queueBind(queue, exchange, routingKey);
  }
  basicQos(prefetchCount: number): Promise<void> {
    return this.#inner.basicQos(prefetchCount);
  }

  basicConsume(
    queue: string,
    params: { noAck?: boolean; exclusive?: boolean },
    callback: (message: AmqpMessageLike) => void,
  ): Promise<AmqpConsumerLike> {
    return this.#inner.basicConsume(queue, params, (message) => {
      if (this.#isOurs(message)) this.#observer.replied(received(message));
      callback(message);
    });
  }

  basicPublish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: AmqpProperties,
    mandatory?: boolean,
  ): Promise<unknown> {
    // Control messages (credit, cancels, the describe request of `call --method`'s input
    // check) are not the call the trace is about.
    if (properties.headers?.['rpc-control'] !== undefined) {
      return this.#inner.basicPublish(exchange, routingKey, body, properties, mandatory);
    }
    if (properties.correlationId !== undefined) this.#sent.add(properties.correlationId);
    this.#observer.published({
      at: performance.now(),
      queue: routingKey,
      bytes: body.length,
      properties: { ...properties },
    });
    return this.#inner.basicPublish(exchange, routingKey, body, properties, mandatory);
  }

  basicAck(deliveryTag: number, multiple?: boolean): Promise<void> {
    return this.#inner.basicAck(deliveryTag, multiple);
  }
  confirmSelect(): Promise<void> {
    return this.#inner.confirmSelect();
  }
  basicNack(deliveryTag: number, requeue: boolean): Promise<void> {
    return this.#inner.basicNack(deliveryTag, requeue);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }

  #isOurs(message: AmqpMessageLike): boolean {
    const id = message.properties.correlationId;
    return id !== undefined && this.#sent.has(id);
  }
}

function received(message: AmqpMessageLike): ReceivedMessage {
  return {
    at: performance.now(),
    bytes: message.body?.length ?? 0,
    properties: { ...message.properties },
    replyCode: message.replyCode,
    replyText: message.replyText,
  };
}
