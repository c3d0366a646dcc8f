import { fromAmqpError, replyCodeOf } from '../transport/errors.js';
import { messageOf } from '../protocol/codec.js';
import { RpcError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ResolvedServeOptions } from '../options/serve.js';
import type { AmqpChannelLike, AmqpClientLike } from '../transport/types.js';

/**
 * Declares a server's queue the way `options` ask, on a channel of `client`, and returns
 * the channel to consume on (a new one when the first was closed by a refusal).
 *
 * A queue that exists with other flags (RabbitMQ's 406 `inequivalent arg`) is used as it
 * is when the application set none of the options that shape the declaration: those were
 * rabbit-rpc's defaults, and someone else (an older server, ops, a definitions file)
 * decided. When it did set some, the mismatch is its own and fails (FAILED_PRECONDITION).
 * Every other refusal becomes an RpcError that names the queue, the broker's reason and
 * what to change. docs/decisions.md, D29.
 */
export async function declareServiceQueue(
  client: AmqpClientLike,
  queue: string,
  options: ResolvedServeOptions,
  logger: Logger,
): Promise<AmqpChannelLike> {
  const channel = await client.channel();
  try {
    await channel.queueDeclare(
      queue,
      { durable: options.durable, autoDelete: options.autoDelete, exclusive: false },
      options.queueArguments,
    );
    return channel;
  } catch (error) {
    channel.close().catch(() => undefined);
    if (!isInequivalent(error) || options.queueOptionsGiven.length > 0) {
      throw declareRefusal(error, queue, options);
    }
    // The 406 closed that channel: check on a new one that the queue is still there.
    const again = await client.channel();
    try {
      await again.queueDeclare(queue, { passive: true });
    } catch (passiveError) {
      again.close().catch(() => undefined);
      throw fromAmqpError(passiveError, `serving "${queue}" failed`);
    }
    logger.warn(
      { queue, reason: brokerText(error) },
      `queue "${queue}" exists with other settings than rabbit-rpc's defaults: serving it as it is`,
    );
    return again;
  }
}

/** A 406 about an existing queue's flags or arguments. */
function isInequivalent(error: unknown): boolean {
  return replyCodeOf(error) === 406 && /inequivalent arg/.test(messageOf(error));
}

/** `Feature \`transient_nonexcl_queues\` is deprecated` (RabbitMQ 3.13+, a 541 connection error). */
const DEPRECATED_FEATURE = /Feature `(\w+)` is deprecated/;

/** The broker's own words, without the AMQP library's "channel 1 closed: " prefix. */
function brokerText(error: unknown): string {
  return messageOf(error)
    .replace(/^(connection|channel \d+) closed: /, '')
    .replace(/\s+/g, ' ');
}

/** The ServeOptions name behind a queue argument the broker reports as inequivalent. */
function optionFor(argument: string): string {
  switch (argument) {
    case 'durable':
      return 'durable';
    case 'auto_delete':
      return 'autoDelete';
    case 'x-queue-type':
      return 'queueType';
    case 'x-delivery-limit':
      return 'deliveryLimit';
    case 'x-dead-letter-exchange':
      return 'deadLetterExchange';
    case 'x-dead-letter-routing-key':
      return 'deadLetterRoutingKey';
    default:
      return `queueArguments['${argument}']`;
  }
}

/** The RpcError for a declaration the broker refused; see {@link declareServiceQueue}. */
export function declareRefusal(
  error: unknown,
  queue: string,
  options: ResolvedServeOptions,
): RpcError {
  const reason = brokerText(error);
  const feature = DEPRECATED_FEATURE.exec(reason)?.[1];
  // A connection error (541): the broker closed the whole connection, and every declaration
  // pending on it fails with the same words. Only a non-durable queue's is at fault; the
  // others were caught in the closing connection.
  if (feature === 'transient_nonexcl_queues' && !options.durable) {
    return new RpcError(
      'FAILED_PRECONDITION',
      `serving "${queue}" failed: the broker refuses non-durable shared queues (deprecated ` +
        `feature ${feature}, refused by default from RabbitMQ 4.3): remove durable: false ` +
        `(queues are durable by default), or permit the feature with ` +
        `deprecated_features.permit.${feature} = true in rabbitmq.conf. The broker said: ${reason}`,
      { cause: error },
    );
  }
  const code = replyCodeOf(error);
  if (code === 406 && isInequivalent(error)) {
    const argument = /inequivalent arg '([^']+)'/.exec(reason)?.[1] ?? '';
    return new RpcError(
      'FAILED_PRECONDITION',
      `serving "${queue}" failed: the queue exists with other settings than asked for ` +
        `(${reason}): change ${optionFor(argument)} to match it, leave the queue options ` +
        `unset (the queue is then served as it is), use declare: false, or delete the queue`,
      { cause: error },
    );
  }
  if (code === 403) {
    return new RpcError(
      'PERMISSION_DENIED',
      `serving "${queue}" failed: the broker refused to declare it (${reason}): grant this ` +
        `user configure permission on "${queue}", or use declare: false to consume a queue ` +
        `declared elsewhere (that needs read permission only)`,
      { cause: error },
    );
  }
  return fromAmqpError(error, `serving "${queue}" failed`);
}
