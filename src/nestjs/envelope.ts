/**
 * Nest's RMQ transport wraps every message: `{ pattern, data, id }` for a request (no `id`:
 * an event), and `{ id, response, isDisposed }` or `{ id, err, isDisposed }` for a reply.
 * The migration bridge reads and writes that envelope on the strategy's queue.
 */
export interface NestEnvelope {
  readonly pattern: unknown;
  readonly data: unknown;
  readonly id?: string;
}

export interface NestReply {
  readonly id: string;
  readonly response?: unknown;
  readonly err?: unknown;
  readonly isDisposed: true;
}

/** True for a body in Nest's envelope: an object with `pattern` and `data` (and a string `id`, if any). */
export function isNestEnvelope(body: unknown): body is NestEnvelope {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  if (!('pattern' in body) || !('data' in body)) return false;
  const id = (body as { id?: unknown }).id;
  return id === undefined || typeof id === 'string';
}
