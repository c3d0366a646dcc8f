/**
 * Names that appear on the wire. docs/protocol.md is the human-readable form of this file;
 * change both together.
 */

/** Request header: the caller's absolute deadline, Unix epoch milliseconds (integer). */
export const DEADLINE_HEADER = 'rpc-deadline';
/** Reply header: present only on error replies; one of the RpcError codes. */
export const STATUS_HEADER = 'rpc-status';
/** Reply header: the error message that goes with {@link STATUS_HEADER}. */
export const MESSAGE_HEADER = 'rpc-message';
/** Reply header: the handler's stack, only when the server opts in. */
export const STACK_HEADER = 'rpc-stack';

export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_BINARY = 'application/octet-stream';
export const CONTENT_TYPE_TEXT = 'text/plain';

/** RabbitMQ's pseudo-queue for Direct Reply-to. */
export const DIRECT_REPLY_QUEUE = 'amq.rabbitmq.reply-to';

/** AMQP reply code for basic.return when no queue is bound to the routing key. */
export const NO_ROUTE = 312;
