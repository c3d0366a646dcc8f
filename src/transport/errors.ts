/** Errors of the AMQP library and of the broker, as RpcErrors with the codes docs/errors.md gives. */
import { RpcError, type RpcErrorCode } from '../errors.js';
import { messageOf } from '../protocol/codec.js';
import { redactUrl } from '../options/url.js';

/**
 * AMQP reply codes (connection.close / channel.close) → RpcError codes. Anything not
 * listed is UNAVAILABLE: the broker or the link failed, and a retry may succeed.
 */
const REPLY_CODE_TO_RPC: Readonly<Record<number, RpcErrorCode>> = {
  311: 'RESOURCE_EXHAUSTED', // CONTENT_TOO_LARGE
  312: 'UNAVAILABLE', // NO_ROUTE
  320: 'UNAVAILABLE', // CONNECTION_FORCED
  402: 'INVALID_ARGUMENT', // INVALID_PATH
  403: 'PERMISSION_DENIED', // ACCESS_REFUSED (login failures are remapped below)
  404: 'NOT_FOUND',
  405: 'FAILED_PRECONDITION', // RESOURCE_LOCKED
  406: 'FAILED_PRECONDITION', // PRECONDITION_FAILED
  506: 'RESOURCE_EXHAUSTED', // RESOURCE_ERROR
  530: 'PERMISSION_DENIED', // NOT_ALLOWED (e.g. no access to the vhost)
  541: 'INTERNAL',
};

/** The AMQP reply code in a cloudamqp error message ("... (404)"), if any. */
export function replyCodeOf(error: unknown): number | undefined {
  const match = /\((\d{3})\)\s*$/.exec(messageOf(error));
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * The broker's max_message_size, from the channel error a larger publish caused
 * ("message size 2097152 is larger than configured max size 1048576").
 */
export function brokerSizeLimit(error: unknown): number | undefined {
  const match = /larger than configured max size (\d+)/.exec(messageOf(error));
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * The 406 RabbitMQ closes a channel with when a publish's `user_id` is not the login
 * ("user_id property set to 'x' but authenticated user was 'y'"): a refused identity, not
 * a broken precondition.
 */
const FORGED_USER_ID = /user_id property set to/;

/** Maps an error from the AMQP library to an RpcError, keeping it as `cause`. */
export function fromAmqpError(error: unknown, context: string): RpcError {
  if (error instanceof RpcError) return error;
  const replyCode = replyCodeOf(error);
  const code = FORGED_USER_ID.test(messageOf(error))
    ? 'PERMISSION_DENIED'
    : replyCode === undefined
      ? 'UNAVAILABLE'
      : (REPLY_CODE_TO_RPC[replyCode] ?? 'UNAVAILABLE');
  return new RpcError(code, `${context}: ${messageOf(error)}`, { cause: error });
}

const TLS_FAILURE = /certificate|self.signed|SSL|TLS|ERR_TLS|altname/i;

/** The broker's identity could not be verified: the same answer on every retry. */
const TLS_VERIFICATION_FAILURE = /certificate|self.signed|altname|UNABLE_TO_VERIFY/i;

/**
 * True when retrying the connection cannot help: a refused login or vhost, or a broker
 * certificate that fails verification.
 */
export function isPermanent(error: RpcError): boolean {
  if (error.code === 'UNAUTHENTICATED' || error.code === 'PERMISSION_DENIED') return true;
  const details: unknown = error.details;
  return (
    typeof details === 'object' &&
    details !== null &&
    'permanent' in details &&
    details.permanent === true
  );
}

/**
 * Maps a failed connection attempt to an RpcError: a refused login (403) is
 * UNAUTHENTICATED, a refused vhost (530) PERMISSION_DENIED, anything else UNAVAILABLE.
 */
export function connectError(error: unknown, url: string): RpcError {
  if (error instanceof RpcError) return error;
  const where = redactUrl(url);
  const replyCode = replyCodeOf(error);
  const text = messageOf(error);
  if (replyCode === 403) {
    return new RpcError('UNAUTHENTICATED', `the broker at ${where} refused the login: ${text}`, {
      cause: error,
    });
  }
  if (replyCode === 530) {
    return new RpcError('PERMISSION_DENIED', `the broker at ${where} refused access: ${text}`, {
      cause: error,
    });
  }
  if (TLS_FAILURE.test(text)) {
    return new RpcError('UNAVAILABLE', `TLS handshake with ${where} failed: ${text}`, {
      cause: error,
      details: { permanent: TLS_VERIFICATION_FAILURE.test(text) },
    });
  }
  return new RpcError('UNAVAILABLE', `no AMQP broker answered at ${where}: ${text}`, {
    cause: error,
  });
}
