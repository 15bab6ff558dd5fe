import type { Bus } from '../bus/bus.js';
import type { Store } from '../store/store.js';
import type { DeliveryState } from './delivery-state.js';
import { StoreDeliveryState } from './store-delivery-state.js';
import { PresenceDirectory } from './presence-directory.js';
import { Router } from './router.js';
import { SessionRegistry } from './session-registry.js';

/**
 * The transport-neutral real-time core of one node: who is connected here, what waits for whom,
 * and how a stored message reaches its recipients. Transports (XMPP over WebSocket, our JSON
 * protocol) register sessions and report acks; senders (REST, transports) hand stored messages
 * to the router.
 */
export class Realtime {
  readonly sessions: SessionRegistry;
  readonly delivery: DeliveryState;
  readonly router: Router;
  /** Who is connected on any node (`users/{u}/status`). */
  readonly presence: PresenceDirectory;

  constructor(store: Store, bus: Bus, opts: { crossNode: boolean; onError?: (context: string, error: unknown) => void }) {
    const onError = opts.onError ?? (() => {});
    this.sessions = new SessionRegistry((e) => onError('a session callback failed', e));
    this.delivery = new StoreDeliveryState(store);
    this.router = new Router(store, bus, this.sessions, this.delivery, { crossNode: opts.crossNode, onError });
    this.presence = new PresenceDirectory(bus, this.sessions, { crossNode: opts.crossNode, onError });
    this.sessions.onPresence = (appId, username, online) => this.presence.changed(appId, username, online);
  }

  /** Starts receiving the other nodes' deliveries and acks. */
  async start(): Promise<void> {
    await Promise.all([this.router.start(), this.presence.start()]);
  }

  /** Closes this node's sessions ('shutdown') and stops receiving from the other nodes. */
  async stop(): Promise<void> {
    this.sessions.closeAll('shutdown');
    await Promise.all([this.router.stop(), this.presence.stop()]);
  }
}
