/**
 * Error replies, both halves (docs/protocol.md, "Errors"): the code and message travel in
 * headers, the details as the body. The server writes them, the caller reads them.
 */
import { RpcError, isRpcErrorCode } from '../errors.js';
import type { AmqpField, AmqpMessageLike } from '../transport/types.js';
import { decodeBody, encodeBody, type EncodedBody } from './codec.js';
import { CONTENT_TYPE_JSON, MESSAGE_HEADER, STACK_HEADER, STATUS_HEADER } from './names.js';

/** An empty JSON body: an error without details, the end of a stream. */
export const EMPTY_REPLY: EncodedBody = { body: new Uint8Array(0), contentType: CONTENT_TYPE_JSON };

/** Error headers stay small: a reply's properties must fit one AMQP frame. */
const MAX_ERROR_TEXT = 2_000;

/**
 * The error reply for an error: its details as the body (nothing when they cannot be
 * encoded), its code, message and (when given) stack in headers, each cut to size.
 */
export function encodeErrorReply(
  error: RpcError,
  stack: string | undefined,
): [EncodedBody, Record<string, AmqpField>] {
  const headers: Record<string, AmqpField> = {
    [STATUS_HEADER]: error.code,
    [MESSAGE_HEADER]: truncate(error.message),
  };
  if (stack) headers[STACK_HEADER] = truncate(stack);
  return [encodeErrorDetails(error.details), headers];
}

/** A reply's outcome: its decoded payload, or the RpcError it carries or causes. */
export function decodeReplyOutcome(message: AmqpMessageLike): unknown {
  try {
    return decodeReply(message);
  } catch (error) {
    return RpcError.from(error, 'INTERNAL');
  }
}

function decodeReply(message: AmqpMessageLike): unknown {
  const { headers, contentType } = message.properties;
  const status = headers?.[STATUS_HEADER];
  if (status === undefined) return decodeBody(message.body, contentType, 'INTERNAL');
  const code = isRpcErrorCode(status) ? status : 'UNKNOWN';
  const text = headers?.[MESSAGE_HEADER];
  let details: unknown;
  try {
    details = decodeBody(message.body, contentType, 'INTERNAL');
  } catch {
    details = undefined; // an error reply is still an error when its details are garbled
  }
  return new RpcError(code, typeof text === 'string' ? text : `remote error ${code}`, {
    details,
  });
}

function truncate(text: string): string {
  return text.length <= MAX_ERROR_TEXT ? text : `${text.slice(0, MAX_ERROR_TEXT)}…`;
}

function encodeErrorDetails(details: unknown): EncodedBody {
  if (details === undefined) return EMPTY_REPLY;
  try {
    return encodeBody(details, 'INTERNAL');
  } catch {
    return EMPTY_REPLY;
  }
}
