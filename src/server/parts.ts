import type { Logger } from '../logger.js';
import type { ResolvedServeOptions } from '../options/serve.js';
import type { DedupeCache } from './dedupe.js';
import type { Executor, Replied } from './execute.js';
import type { Responder } from './respond.js';
import type { Running } from './running.js';
import type { Counters } from './stats.js';
import type { StreamSender } from './stream-sender.js';

/** The parts of one server that every origin of requests (plain, batch, broadcast) uses. */
export interface ServerParts {
  readonly queue: string;
  readonly options: ResolvedServeOptions;
  readonly logger: Logger;
  readonly counters: Counters;
  readonly running: Running;
  readonly executor: Executor;
  readonly responder: Responder;
  readonly streams: StreamSender;
  /** Answers by `message_id`, for duplicates; undefined with `dedupe: false`. */
  readonly dedupe: DedupeCache<Replied> | undefined;
}
