import type { RealtimeMessage } from '../../src/realtime/realtime-message.js';
import type { RealtimeSignal } from '../../src/realtime/realtime-signal.js';
import type { CloseReason, SessionTransport } from '../../src/realtime/session-registry.js';

/** A stand-in transport: a plain object that keeps what the core handed it. */
export class FakeSession implements SessionTransport {
  readonly received: RealtimeMessage[] = [];
  readonly closed: CloseReason[] = [];
  readonly signals: RealtimeSignal[] = [];

  deliver(message: RealtimeMessage): void {
    this.received.push(message);
  }

  signal(signal: RealtimeSignal): void {
    this.signals.push(signal);
  }

  close(reason: CloseReason): void {
    this.closed.push(reason);
  }

  /** The text bodies of what arrived, in order. */
  texts(): string[] {
    return this.received.map((m) => {
      const rec = JSON.parse(m.record) as { payload: { bodies: { msg?: string }[] } };
      return rec.payload.bodies[0]?.msg ?? '';
    });
  }
}

/** Waits for the event loop to run pending routing (a fire-and-forget after the store resolved). */
export function settle(ms = 50): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
