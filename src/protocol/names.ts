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

/**
 * Direct exchange of control messages and broadcasts. Each rabbit-rpc server connection
 * binds its control queue here with the name of every queue it serves.
 */
export const CONTROL_EXCHANGE = 'rabbit-rpc.control';
/** Control message header: `cancel` or `credit`. A message without it on a control queue is a broadcast request. */
export const CONTROL_HEADER = 'rpc-control';
/** Cancel message header: the `reply_to` of the call to cancel, as its caller published it. */
export const CANCEL_REPLY_TO_HEADER = 'rpc-reply-to';
/** Credit message header: how many stream items the caller accepts in all (integer). */
export const CREDIT_HEADER = 'rpc-credit';
/** Request header: the caller accepts a streamed reply; the value is its window (integer items). */
export const STREAM_WINDOW_HEADER = 'rpc-stream-window';
/** Reply header of a streamed reply: `item` for each item, `end` for the last message. */
export const STREAM_HEADER = 'rpc-stream';
/** Reply header of a stream item: its 0-based position. */
export const STREAM_SEQ_HEADER = 'rpc-stream-seq';
/** Reply header of stream and broadcast replies: the answering server's control queue. */
export const CONTROL_QUEUE_HEADER = 'rpc-control-queue';
