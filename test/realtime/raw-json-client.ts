import WebSocket from 'ws';

export type Frame = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read whatever the server sent

/** A raw client of the JSON protocol: every frame received is queued and read in order. */
export class RawJsonClient {
  readonly frames: Frame[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d, isBinary) => {
      this.frames.push(isBinary ? { binary: true } : (JSON.parse(String(d)) as Frame));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
      this.wake();
    });
    ws.on('error', () => {});
  }

  static connect(port: number, protocol: string | string[] = 'chatvault.v1', path = '/ws'): Promise<RawJsonClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocol);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawJsonClient(ws)));
      ws.once('error', reject);
    });
  }

  /** Connects and logs in; resolves with the welcome frame. */
  static async login(port: number, auth: Frame): Promise<{ c: RawJsonClient; welcome: Frame }> {
    const c = await RawJsonClient.connect(port);
    c.send({ op: 'auth', ...auth });
    const welcome = await c.expect((f) => f.op === 'welcome' || f.op === 'error');
    if (welcome.op !== 'welcome') throw new Error(`login refused: ${JSON.stringify(welcome)}`);
    return { c, welcome };
  }

  send(frame: Frame | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first queued frame matching, consumed with every frame before it. */
  async expect(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(0, i + 1)[i]!;
      if (this.closeCode !== null) throw new Error(`closed (${this.closeCode} ${this.closeReason}) before the frame; got ${JSON.stringify(this.frames)}`);
      if (Date.now() > deadline) throw new Error(`timeout; got ${JSON.stringify(this.frames)}`);
      await this.next(deadline - Date.now());
    }
  }

  /** Message pushes received until `n` of them are here. */
  async messages(n: number, timeoutMs = 10000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    const out: Frame[] = [];
    while (out.length < n) {
      const f = await this.expect((x) => x.op === 'message', deadline - Date.now());
      out.push(f);
    }
    return out;
  }

  /** Resolves with the close code once the server closed the socket. */
  async closed(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null) {
      if (Date.now() > deadline) throw new Error(`not closed; got ${JSON.stringify(this.frames)}`);
      await this.next(deadline - Date.now());
    }
    return this.closeCode;
  }

  /** Waits a moment and returns the message pushes that arrived meanwhile (for "nothing more came"). */
  async quiet(ms = 300): Promise<Frame[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.filter((f) => f.op === 'message');
  }

  private next(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, Math.max(0, ms));
      this.waiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
