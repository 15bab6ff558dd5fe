import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Services } from '../../services.js';
import { XmppConnection } from './connection.js';
import { MAX_FRAME_BYTES } from './xml.js';

/** Paths of the XMPP WebSocket endpoint (spec §2: `/ws/` by convention). */
export const XMPP_WS_PATHS: readonly string[] = ['/ws', '/ws/'];
/** The XMPP virtual domain (spec §3); the SDKs default to it. */
export const DEFAULT_XMPP_DOMAIN = 'easemob.com';

export interface XmppWsEndpoint {
  /** Ends every connection (stream error `system-shutdown` for bound ones) and stops accepting. */
  close(): void;
  /** Open WebSocket connections. */
  readonly connections: number;
}

/**
 * XMPP over WebSocket (RFC 7395) on the REST port: takes over upgrade requests for `/ws/`,
 * refuses other upgrades with 404. Must be attached before the server listens.
 */
export function attachXmppWs(server: Server, s: Services, opts: { domain?: string } = {}): XmppWsEndpoint {
  const domain = (opts.domain ?? DEFAULT_XMPP_DOMAIN).toLowerCase();
  const onError = (context: string, e: unknown): void => {
    if (s.config.logLevel !== 'silent') process.stderr.write(`chatvault xmpp-ws: ${context}: ${e instanceof Error ? e.message : String(e)}\n`);
  };
  const wss = new WebSocketServer({
    noServer: true,
    // Above the stanza cap, so that an oversized stanza gets a stream error (policy-violation)
    // from the connection instead of a bare close; beyond this ws cuts the socket itself.
    maxPayload: 4 * MAX_FRAME_BYTES,
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  });
  const open = new Set<WebSocket>();

  wss.on('connection', (ws: WebSocket) => {
    open.add(ws);
    const conn = new XmppConnection(s, {
      send: (d) => ws.send(d),
      end: () => ws.close(1000),
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
    }, { domain, onError });
    ws.on('message', (data, isBinary) => {
      // RFC 7395 §3.2: text frames only, UTF-8 XML.
      if (isBinary) return conn.reject('binary frames are not XMPP');
      conn.receive(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'));
    });
    ws.on('close', () => {
      open.delete(ws);
      conn.socketClosed();
    });
    ws.on('error', (e) => onError('socket', e));
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0]!;
    if (!XMPP_WS_PATHS.includes(path)) return refuse(socket, 404, 'Not Found');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    // Browsers abort without the sub-protocol echoed (spec §4.1); a client not asking for it is not an XMPP client.
    if (!offered.includes('xmpp')) return refuse(socket, 400, 'Bad Request');
    try {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    } catch (e) {
      onError('upgrade', e);
      socket.destroy();
    }
  };
  server.on('upgrade', onUpgrade);

  return {
    close() {
      server.off('upgrade', onUpgrade);
      // Bound sessions get system-shutdown through the registry; the rest are just closed.
      s.realtime.sessions.closeAll('shutdown');
      for (const ws of open) {
        ws.close(1001);
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

function refuse(socket: Duplex, status: number, text: string): void {
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
