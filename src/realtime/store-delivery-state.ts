import type { AckedMessage, Store } from '../store/store.js';
import type { DeliveryState, DeliveryStatus } from './delivery-state.js';
import { fromStored, type RealtimeMessage } from './realtime-message.js';

/**
 * The delivery state every node of a deployment shares: the store's inbox rows, which the send
 * writes in the message's own transaction (so a crash can never store a message without its
 * recipients' rows), and acks recorded there. Nothing is capped and nothing lives in memory.
 */
export class StoreDeliveryState implements DeliveryState {
  constructor(private readonly store: Store) {}

  async pending(appId: number, username: string, afterSeq: bigint, limit: number): Promise<RealtimeMessage[]> {
    const rows = await this.store.pendingDeliveries(appId, username.toLowerCase(), afterSeq, limit);
    return rows.map((r) => fromStored(r, r.seq));
  }

  count(appId: number, username: string): Promise<number> {
    return this.store.countPendingDeliveries(appId, username.toLowerCase());
  }

  status(appId: number, username: string, msgId: string): Promise<DeliveryStatus | null> {
    return this.store.deliveryStatus(appId, username.toLowerCase(), msgId);
  }

  markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]> {
    return msgIds.length === 0 ? Promise.resolve([]) : this.store.markDelivered(appId, username.toLowerCase(), msgIds);
  }

  async inbox(appId: number, username: string, afterSeq: bigint, limit: number): Promise<{ messages: RealtimeMessage[]; more: boolean }> {
    // Under the high-water mark: a message still committing below it can not be skipped by a
    // client that moves its position past a later one (the export's exactly-once rule).
    const hwm = await this.store.highWaterMark();
    const rows = await this.store.inbox(appId, username.toLowerCase(), afterSeq, hwm, limit + 1);
    return { messages: rows.slice(0, limit).map((r) => fromStored(r, r.seq)), more: rows.length > limit };
  }
}
