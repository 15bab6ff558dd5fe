import type { RealtimeMessage } from '../realtime-message.js';

/** What the gate needs from its connection. */
export interface GateIo {
  /** The user's undelivered messages after `afterSeq`, oldest first (DeliveryState.pending). */
  load(afterSeq: bigint, limit: number): Promise<RealtimeMessage[]>;
  /** Writes one message to the client; `delayed` marks a replayed (offline) one. */
  push(message: RealtimeMessage, delayed: boolean): void;
  /** Resolves true once the socket's send buffer is low again, false when the stream ended or the client stopped reading. */
  drained(): Promise<boolean>;
  /** Whether the socket's send buffer is past the low-water mark (then wait for `drained`). */
  congested(): boolean;
  /** The gate cannot go on (too many live messages queued behind a replay). */
  overflow(): void;
}

/** Messages read per page of the replay. */
export const REPLAY_PAGE = 100;
// Live messages held while a replay runs. Past this the client is far behind; it ends the stream,
// and everything one-to-one or group stays pending for its next login.
const MAX_HELD = 5000;
// Replayed ids remembered once live: a message the replay read may still be on its way as a
// live delivery (routing follows the commit; another node's copy comes later through the bus).
const MAX_REMEMBERED = 5000;

/**
 * Presence-gated delivery (spec §4.5, §7): a session gets nothing until it is opened (XMPP:
 * the initial presence), then the user's pending messages oldest first, then live ones. Live
 * messages that arrive during the replay are held and sent after it, minus those the replay
 * already sent, so none is lost or doubled. Closing (unavailable, end of stream) gates again;
 * whatever was not acked stays pending in the store.
 */
export class DeliveryGate {
  private mode: 'gated' | 'replaying' | 'live' = 'gated';
  private held: RealtimeMessage[] = [];
  private readonly replayed = new Set<string>();
  // Bumped on every close, so that a replay still awaiting the store knows it is stale.
  private generation = 0;

  constructor(private readonly io: GateIo) {}

  /** Whether live messages flow (or are held for the running replay). */
  get open(): boolean {
    return this.mode !== 'gated';
  }

  /** A live message for this session. */
  deliver(message: RealtimeMessage): void {
    if (this.mode === 'live') {
      if (!this.replayed.has(message.msgId)) this.io.push(message, false);
      return;
    }
    if (this.mode === 'gated') return;
    if (this.held.length >= MAX_HELD) return this.io.overflow();
    this.held.push(message);
  }

  /** Opens the gate: replays what is pending, then goes live. Rejects only when the store fails. */
  async openGate(): Promise<void> {
    if (this.mode !== 'gated') return;
    this.mode = 'replaying';
    const generation = this.generation;
    let after = 0n;
    for (;;) {
      const page = await this.io.load(after, REPLAY_PAGE);
      if (generation !== this.generation) return;
      for (const m of page) {
        if (this.io.congested() && (!(await this.io.drained()) || generation !== this.generation)) return;
        if (!this.replayed.has(m.msgId)) this.io.push(m, true);
        this.remember(m.msgId);
        const seq = BigInt(m.seq);
        if (seq > after) after = seq;
      }
      if (page.length < REPLAY_PAGE) break;
    }
    const held = this.held;
    this.held = [];
    this.mode = 'live';
    for (const m of held) if (!this.replayed.has(m.msgId)) this.io.push(m, false);
  }

  /** Gates again: nothing more is sent until the next `openGate`. */
  close(): void {
    this.mode = 'gated';
    this.generation++;
    this.held = [];
    this.replayed.clear();
  }

  private remember(msgId: string): void {
    this.replayed.add(msgId);
    if (this.replayed.size > MAX_REMEMBERED) this.replayed.delete(this.replayed.values().next().value!);
  }
}
