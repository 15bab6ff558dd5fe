import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Services } from '../../services.js';
import { JSON_WS_PROTOCOL, MAX_FRAME_BYTES } from './client-frame.js';
import { JsonConnection } from './json-connection.js';
import { CLOSE } from './server-frame.js';

export interface JsonWsEndpoint {
  /** Takes over an upgrade the dispatcher (ws-upgrade.ts) routed here: path and sub-protocol already checked. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every connection (1001: clients reconnect elsewhere or later) and stops accepting. */
  close(): void;
  /** Open WebSocket connections. */
  readonly connections: number;
}

/** The JSON protocol (docs/realtime.md) on the shared WebSocket endpoint, sub-protocol `chatvault.v1`. */
export function createJsonWs(s: Services, opts: { heartbeatMs?: number; authTimeoutMs?: number } = {}): JsonWsEndpoint {
  const onError = (context: string, e: unknown): void => {
    if (s.config.logLevel !== 'silent') process.stderr.write(`chatvault json-ws: ${context}: ${e instanceof Error ? e.message : String(e)}\n`);
  };
  // ws refuses a larger frame itself, closing with 1009 before buffering it.
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, handleProtocols: (p) => (p.has(JSON_WS_PROTOCOL) ? JSON_WS_PROTOCOL : false) });
  const open = new Set<WebSocket>();

  wss.on('connection', (ws: WebSocket) => {
    open.add(ws);
    const conn = new JsonConnection(s, {
      send: (d) => ws.send(d),
      sendBatch: (frames) => {
        // Corked, the frames leave in one write instead of one each.
        const socket = (ws as unknown as { _socket?: Duplex })._socket;
        socket?.cork();
        for (const f of frames) ws.send(f);
        socket?.uncork();
      },
      close: (code, reason) => ws.close(code, reason),
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
    }, { onError, ...opts });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return conn.receiveBinary();
      // A Buffer (the default binaryType), decoded without a copy.
      conn.receive(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8'));
    });
    ws.on('close', () => {
      open.delete(ws);
      conn.socketClosed();
    });
    // An oversized frame or a protocol error: ws closes the socket (1009, 1002) and says why here.
    ws.on('error', (e) => onError('socket', e));
  });

  return {
    handleUpgrade(req, socket, head) {
      try {
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      } catch (e) {
        onError('upgrade', e);
        socket.destroy();
      }
    },
    close() {
      for (const ws of open) {
        ws.close(CLOSE.goingAway, 'server shutting down');
        // A client that does not answer the close handshake must not hold the stop up.
        setTimeout(() => ws.terminate(), 1000).unref();
      }
      wss.close();
    },
    get connections() {
      return open.size;
    },
  };
}
