/**
 * The handler's side of the API: what a request handler is and what it knows about the
 * request it runs. Shared by servers, serve interceptors and service contracts; it imports
 * nothing, so that every layer can use it.
 */

/** What a handler knows about the request it is running. */
export interface HandlerContext {
  /**
   * Aborts when the caller's deadline passes (reason: RpcError DEADLINE_EXCEEDED), when the
   * caller cancels the call or stops reading its stream (CANCELLED), when the server stops
   * waiting for this handler on close, or when the connection is lost. Pass the context as
   * `parent` to nested calls to hand both the deadline and the cancellation down.
   */
  readonly signal: AbortSignal;
  /** The caller's deadline, Unix epoch milliseconds; undefined when the caller sent none. */
  readonly deadline: number | undefined;
  /** The request's AMQP headers, including the caller's application headers. */
  readonly headers: Readonly<Record<string, unknown>>;
  /** The request's correlation id, echoed on the reply. */
  readonly correlationId: string | undefined;
  /**
   * A stable id of the request for deduplication, the same on every redelivery: the AMQP
   * `message_id` if the caller set one, else the correlation id (rabbit-rpc callers make it
   * unique per call).
   */
  readonly messageId: string | undefined;
  /** True when the broker may have delivered this request before (a hint, not a proof). */
  readonly redelivered: boolean;
  /** The queue the request came from. */
  readonly queue: string;
  /** The method name (AMQP `type` property) of a service call; undefined for plain calls. */
  readonly method: string | undefined;
  /**
   * The caller's AMQP `user_id`; undefined when it sent none (see `requireUserId`).
   * Checked by the broker: RabbitMQ refuses a publish whose `user_id` is not the
   * publisher's login, so this is trustworthy unless the publisher has the `impersonator`
   * tag.
   */
  readonly userId: string | undefined;
}

/**
 * A request handler: returns (or resolves to) the reply, or throws an RpcError. To stream
 * the reply, return an AsyncIterable (or be an async generator): each item is sent as it
 * comes, to callers that use `stream()`.
 */
export type Handler<TRequest = unknown, TReply = unknown> = (
  request: TRequest,
  ctx: HandlerContext,
) => TReply | PromiseLike<TReply>;
