import type { ApiError, ApiErrorBody, StreamEndEvent, StreamItemEvent } from '../api.js';

/** An error of the ui server's API (not of a call): its code, message and HTTP status. */
export class ApiFailure extends Error {
  constructor(
    readonly error: ApiError,
    readonly status: number,
  ) {
    super(`${error.code}: ${error.message}`);
  }
}

export type StreamEvent =
  | { readonly event: 'item'; readonly data: StreamItemEvent }
  | { readonly event: 'end'; readonly data: StreamEndEvent };

/** The page's side of the API (src/ui/api.ts): every request carries the token. */
export class ApiClient {
  readonly #token: string;

  constructor(token: string) {
    this.#token = token;
  }

  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${this.#token}` },
      cache: 'no-store',
      ...(signal ? { signal } : {}),
    });
    return (await this.#read(response)) as T;
  }

  async post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const response = await fetch(path, this.#postInit(body, signal));
    return (await this.#read(response)) as T;
  }

  /** The events of a streamed call, as they come; aborting `signal` stops it on the server. */
  async *stream(body: unknown, signal: AbortSignal): AsyncGenerator<StreamEvent> {
    const response = await fetch('/api/stream', this.#postInit(body, signal));
    if (!response.ok || response.body === null) {
      await this.#read(response);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event !== undefined) yield event;
          end = buffer.indexOf('\n\n');
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  #postInit(body: unknown, signal: AbortSignal | undefined): RequestInit {
    return {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.#token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
      ...(signal ? { signal } : {}),
    };
  }

  async #read(response: Response): Promise<unknown> {
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ApiFailure(
        { code: 'INTERNAL', message: `not JSON from the server (HTTP ${response.status})` },
        response.status,
      );
    }
    if (!response.ok) {
      const error = (parsed as Partial<ApiErrorBody>).error ?? {
        code: 'UNKNOWN',
        message: `HTTP ${response.status}`,
      };
      throw new ApiFailure(error, response.status);
    }
    return parsed;
  }
}

function parseEvent(block: string): StreamEvent | undefined {
  let name = '';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) name = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (name === 'item') return { event: 'item', data: JSON.parse(data) as StreamItemEvent };
  if (name === 'end') return { event: 'end', data: JSON.parse(data) as StreamEndEvent };
  return undefined;
}
