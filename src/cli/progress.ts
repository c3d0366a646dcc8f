/** The part of a stream a {@link ProgressLine} writes to. */
export interface ProgressStream {
  readonly isTTY?: boolean | undefined;
  write(text: string): unknown;
}

/** Carriage return, then erase to the end of the line: the next text replaces the line. */
const REWRITE = '\r\u001b[K';

/**
 * One status line, redrawn in place every `intervalMs` while something runs, on a terminal
 * only: piped or redirected, it writes nothing, so logs and scripts get the result alone.
 */
export class ProgressLine {
  readonly #stream: ProgressStream;
  readonly #text: () => string;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #drawn = false;

  constructor(stream: ProgressStream, text: () => string, intervalMs = 250) {
    this.#stream = stream;
    this.#text = text;
    this.#intervalMs = intervalMs;
  }

  /** Whether this line shows at all (its stream is a terminal). */
  get enabled(): boolean {
    return this.#stream.isTTY === true;
  }

  start(): void {
    if (!this.enabled || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#draw(), this.#intervalMs);
    // The line is a courtesy: it never keeps the process alive.
    this.#timer.unref();
  }

  /** Stops redrawing and erases the line, so what is printed next starts on a clean line. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#drawn) this.#stream.write(REWRITE);
    this.#drawn = false;
  }

  #draw(): void {
    this.#stream.write(REWRITE + this.#text());
    this.#drawn = true;
  }
}
