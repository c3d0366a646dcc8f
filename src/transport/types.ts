import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';

/**
 * The slice of an AMQP 0-9-1 client that rabbit-rpc uses. @cloudamqp/amqp-client's classes
 * fit it as they are; `rabbit-rpc/testing`'s in-memory broker implements it too, so the
 * same caller and server code runs against either.
 */
export interface AmqpClientLike {
  readonly closed: boolean;
  /** Set while the broker blocks publishers (connection.blocked), to the reason given. */
  readonly blocked?: string | undefined;
  onblocked?: ((reason: string) => void) | undefined;
  onunblocked?: (() => void) | undefined;
  /** Called when the connection ends without `close()` (the error says why). */
  ondisconnect?: ((error?: Error) => void) | undefined;
  channel(): Promise<AmqpChannelLike>;
  close(): Promise<void>;
}

/** One AMQP channel. */
export interface AmqpChannelLike {
  readonly closed: boolean;
  /** The connection the channel belongs to (used to batch socket writes). */
  readonly connection: unknown;
  /** Called with each message the broker returns (mandatory publish, no route). */
  onReturn(message: AmqpMessageLike): void;
  /**
   * Called, instead of the consumer's callback, with each delivery whose properties do not
   * decode (a header table nested too deep, a length past its frame). The AMQP client has
   * already rejected it without requeue (dead-lettered where configured) unless the
   * consumer does not ack. From the patched @cloudamqp/amqp-client (patches/README.md).
   */
  onUndecodable?(message: AmqpMessageLike): void;
  queueDeclare(
    name: string,
    params: { durable?: boolean; autoDelete?: boolean; exclusive?: boolean; passive?: boolean },
    args?: Record<string, AmqpField>,
  ): Promise<{ name: string; messageCount: number; consumerCount: number }>;
  queueDelete(name: string): Promise<unknown>;
  /** Declares an exchange (rabbit-rpc uses one direct exchange for control messages). */
  exchangeDeclare(
    name: string,
    type: 'direct',
    params: { durable?: boolean; autoDelete?: boolean; passive?: boolean },
  ): Promise<void>;
  queueBind(queue: string, exchange: string, routingKey: string): Promise<void>;
  basicQos(prefetchCount: number): Promise<void>;
  basicConsume(
    queue: string,
    params: { noAck?: boolean; exclusive?: boolean },
    callback: (message: AmqpMessageLike) => void,
  ): Promise<AmqpConsumerLike>;
  basicPublish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: AmqpProperties,
    mandatory?: boolean,
  ): Promise<unknown>;
  basicAck(deliveryTag: number, multiple?: boolean): Promise<void>;
  /** Puts the channel in confirm mode: `basicPublish` then settles on the broker's ack or nack. */
  confirmSelect(): Promise<void>;
  basicNack(deliveryTag: number, requeue: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A consumer: `wait()` resolves when it is cancelled by us, rejects when the broker ends it. */
export interface AmqpConsumerLike {
  wait(): Promise<void>;
  cancel(): Promise<unknown>;
}

/** A delivered or returned message. */
export interface AmqpMessageLike {
  readonly properties: AmqpProperties;
  readonly body: Uint8Array | null;
  readonly deliveryTag: number;
  readonly redelivered: boolean;
  /** The routing key it was published with. */
  readonly routingKey: string;
  readonly replyCode?: number | undefined;
  readonly replyText?: string | undefined;
  /** Why the properties did not decode (they are then empty); see `onUndecodable`. */
  readonly decodeError?: Error | undefined;
}

/**
 * Opens one AMQP connection to `url`. The default opens a real TCP (or TLS) connection;
 * `rabbit-rpc/testing` provides an in-memory one for unit tests.
 */
export type AmqpTransport = (url: string, options: AmqpTransportOptions) => Promise<AmqpClientLike>;

/** What a transport is told about the connection to open: `connect()`'s options, resolved. */
export interface AmqpTransportOptions {
  /** How long opening the connection may take. */
  readonly connectTimeoutMs: number;
  /** AMQP heartbeat interval in seconds; 0 turns heartbeats off. */
  readonly heartbeatSec: number;
  /** Largest AMQP frame in bytes. */
  readonly frameMax: number;
  /** The connection name shown by the broker, if any. */
  readonly connectionName: string | undefined;
  /** Extra options for `amqps://` URLs, passed to `tls.connect`. */
  readonly tls: TlsConnectionOptions | undefined;
}

/** A value in an AMQP field table (headers, queue arguments). */
export type AmqpField = string | boolean | bigint | number | undefined | null | object;

/**
 * AMQP basic properties, as rabbit-rpc reads and writes them. Declared here rather than
 * re-exported from the AMQP client so that CommonJS type resolution never needs the
 * client's ESM-only typings.
 */
export interface AmqpProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: Record<string, AmqpField>;
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  timestamp?: Date;
  type?: string;
  userId?: string;
  appId?: string;
}
