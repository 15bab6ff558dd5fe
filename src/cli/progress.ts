/** Where progress goes: stderr, or anything shaped like it. */
export interface ProgressOut {
  isTTY?: boolean;
  write(s: string): boolean;
}

export interface ProgressOptions {
  /** The word before the numbers: `export`, `import`. */
  label: string;
  out?: ProgressOut;
  /** Messages already done before this run (a resumed export): counted, but not in the rate. */
  start?: number;
  /** How often a terminal line is redrawn. */
  ttyEveryMs?: number;
  /** How often a plain line is printed when stderr is not a terminal. */
  plainEveryMs?: number;
}

function grouped(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function duration(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/**
 * A progress display on stderr: on a terminal one line redrawn in place with messages, rate,
 * percentage and ETA (when the share done is known); otherwise a plain line every few seconds,
 * which keeps logs of cron jobs and CI readable.
 */
export class Progress {
  private readonly out: ProgressOut;
  private readonly tty: boolean;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;
  private count: number;
  private readonly base: number;
  private fraction: number | null = null;
  private note = '';
  private shown = false;

  constructor(private readonly opts: ProgressOptions) {
    this.out = opts.out ?? process.stderr;
    this.tty = this.out.isTTY === true;
    this.count = this.base = opts.start ?? 0;
    const every = this.tty ? opts.ttyEveryMs ?? 250 : opts.plainEveryMs ?? 5000;
    this.timer = setInterval(() => this.render(), every);
    this.timer.unref();
  }

  /** Sets the number of messages done. */
  set(count: number): void {
    this.count = count;
  }

  /** Sets the share of the work done (0..1), for the percentage and the ETA; null = unknown. */
  setFraction(f: number | null): void {
    this.fraction = f === null ? null : Math.min(1, Math.max(0, f));
  }

  /** A short word shown after the numbers (`retrying`, `checkpoint`), until replaced. */
  setNote(note: string): void {
    this.note = note;
  }

  /** The progress line as it stands. */
  line(): string {
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? (this.count - this.base) / secs : 0;
    let s = `${this.opts.label}: ${grouped(this.count)} messages, ${grouped(rate)}/s`;
    if (this.fraction !== null) {
      s += `, ${(this.fraction * 100).toFixed(1)}%`;
      if (this.fraction > 0 && this.fraction < 1) s += `, ETA ${duration((secs * (1 - this.fraction)) / this.fraction)}`;
    }
    s += `, ${duration(secs)} elapsed`;
    return this.note ? `${s} (${this.note})` : s;
  }

  /** Prints a line of its own (a retry, a warning) without breaking the progress line. */
  log(line: string): void {
    this.out.write(`${this.tty ? '\r\x1b[K' : ''}${line}\n`);
  }

  private render(): void {
    if (this.tty) this.out.write(`\r\x1b[K${this.line()}`);
    else this.out.write(`${this.line()}\n`);
    this.shown = true;
  }

  /** Stops the display, leaving a last line when anything was shown (or always, with `final`). */
  stop(final = false): void {
    clearInterval(this.timer);
    if (this.shown || final) this.render();
    if (this.tty && (this.shown || final)) this.out.write('\n');
  }
}
