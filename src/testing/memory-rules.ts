/**
 * What RabbitMQ refuses when a queue is declared (its arguments, an equivalent
 * redeclaration) and the channel errors the in-memory broker closes a channel with, in
 * RabbitMQ's words.
 * @internal
 */
import type { AmqpField } from '../transport/types.js';
import { ChannelFailure, type MemoryQueue } from './memory-model.js';

/** Exchanges every RabbitMQ vhost has; nothing can be bound to them here, so they route nowhere. */
export const BUILT_IN_EXCHANGES = new Set(['amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers']);
/** Queue arguments RabbitMQ checks for equivalence when a queue is declared again. */
const CHECKED_ARGUMENTS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-queue-type',
  'x-delivery-limit',
  'x-overflow',
  'x-queue-mode',
];

/** A queue declared again must be declared as it was: RabbitMQ's equivalence check. */
export function checkEquivalent(
  existing: MemoryQueue,
  name: string,
  { durable, autoDelete, exclusive }: { durable: boolean; autoDelete: boolean; exclusive: boolean },
  args: Record<string, AmqpField>,
): void {
  if ((existing.owner !== undefined) !== exclusive) throw locked(name);
  if (existing.durable !== durable) inequivalent(name, 'durable', durable, existing.durable);
  if (existing.autoDelete !== autoDelete) {
    inequivalent(name, 'auto_delete', autoDelete, existing.autoDelete);
  }
  for (const key of CHECKED_ARGUMENTS) {
    if (!sameField(args[key], existing.args[key])) {
      inequivalent(name, key, args[key], existing.args[key]);
    }
  }
}

export function noExchange(exchange: string): ChannelFailure {
  return new ChannelFailure(404, `NOT_FOUND - no exchange '${exchange}' in vhost '/'`);
}

export function notFound(queue: string): ChannelFailure {
  return new ChannelFailure(404, `NOT_FOUND - no queue '${queue}' in vhost '/'`);
}

export function locked(queue: string): ChannelFailure {
  return new ChannelFailure(
    405,
    `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' in vhost '/'. ` +
      'It could be originally declared on another connection or the exclusive property value ' +
      'does not match that of the original declaration.',
  );
}

function inequivalent(queue: string, arg: string, received: unknown, current: unknown): never {
  const show = (value: unknown) => (value === undefined ? 'none' : `'${fieldText(value)}'`);
  throw new ChannelFailure(
    406,
    `PRECONDITION_FAILED - inequivalent arg '${arg}' for queue '${queue}' in vhost '/': ` +
      `received ${show(received)} but current is ${show(current)}`,
  );
}

function sameField(a: AmqpField | undefined, b: AmqpField | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return typeof a === typeof b || (isNumeric(a) && isNumeric(b))
    ? fieldText(a) === fieldText(b)
    : false;
}

/** A header or argument value as text, for comparisons and error messages. */
function fieldText(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    return JSON.stringify(value, (_key, item: unknown) =>
      typeof item === 'bigint' ? item.toString() : item,
    );
  }
  return String(value);
}

function isNumeric(value: unknown): boolean {
  return typeof value === 'number' || typeof value === 'bigint';
}

/** What RabbitMQ refuses when a queue is first declared (the subset that matters here). */
export function checkArguments(
  name: string,
  args: Record<string, AmqpField>,
  durable: boolean,
  exclusive: boolean,
): void {
  for (const key of ['x-expires', 'x-message-ttl', 'x-delivery-limit']) {
    const value = args[key];
    if (value === undefined) continue;
    const min = key === 'x-expires' ? 1 : 0;
    if (!isNumeric(value) || Number(value) < min || !Number.isInteger(Number(value))) {
      throw new ChannelFailure(
        406,
        `PRECONDITION_FAILED - invalid arg '${key}' for queue '${name}' in vhost '/': ${fieldText(value)}`,
      );
    }
  }
  const type = args['x-queue-type'];
  if (type !== undefined && type !== 'classic' && type !== 'quorum') {
    throw new ChannelFailure(
      406,
      `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '${name}' in vhost '/': ${fieldText(type)}`,
    );
  }
  if (type === 'quorum' && (exclusive || !durable)) {
    const property = exclusive ? 'exclusive' : 'non-durable';
    throw new ChannelFailure(
      406,
      `PRECONDITION_FAILED - invalid property '${property}' for queue '${name}' in vhost '/'`,
    );
  }
}
