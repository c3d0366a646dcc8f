/** Why a private broker could not do what was asked. */
export type PrivateBrokerErrorCode =
  /** rabbitmq-server (or Erlang's epmd) is not installed where the harness looks. */
  | 'NOT_INSTALLED'
  /** The node did not boot, or did not answer AMQP within `startTimeoutMs`. */
  | 'START_FAILED'
  /** A `rabbitmqctl` command failed. */
  | 'CTL_FAILED'
  /** The broker was already closed, or is not running when it must be. */
  | 'NOT_RUNNING';

/** The one error class of the test harness; `code` says what went wrong. */
export class PrivateBrokerError extends Error {
  override readonly name = 'PrivateBrokerError';
  constructor(
    readonly code: PrivateBrokerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
