import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Paths of the WebSocket endpoint (spec §2: `/ws/` by convention); the sub-protocol picks the dialect. */
export const WS_PATHS: readonly string[] = ['/ws', '/ws/'];

/** A protocol served on the WebSocket endpoint. */
export interface UpgradeRoute {
  /** The `Sec-WebSocket-Protocol` value that selects it (`xmpp`, `chatvault.v1`). */
  protocol: string;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * Owns the server's `upgrade` event: one endpoint, several protocols. An upgrade for `/ws` or
 * `/ws/` goes to the first sub-protocol the client offers that a route serves; anything else is
 * refused before the handshake (404 for another path, 400 without a known sub-protocol: browsers
 * abort a handshake whose sub-protocol is not echoed, so a client offering none is not ours).
 * Must be attached before the server listens; returns the detach.
 */
export function attachWsUpgrade(server: Server, routes: readonly UpgradeRoute[]): () => void {
  const byProtocol = new Map(routes.map((r) => [r.protocol, r]));
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0]!;
    if (!WS_PATHS.includes(path)) return refuse(socket, 404, 'Not Found');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const route = offered.map((p) => byProtocol.get(p)).find((r) => r !== undefined);
    if (!route) return refuse(socket, 400, 'Bad Request');
    route.handleUpgrade(req, socket, head);
  };
  server.on('upgrade', onUpgrade);
  return () => server.off('upgrade', onUpgrade);
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
