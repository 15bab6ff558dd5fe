import type { IncomingMessage } from 'node:http';
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
  /** Takes over an upgrade the dispatcher (ws-upgrade.ts) routed here: path and `xmpp` sub-protocol already checked. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Ends every connection (stream error `system-shutdown` for bound ones) and stops accepting. */
  close(): void;
  /** Open WebSocket connections. */
  readonly connections: number;
}

/**
 * XMPP over WebSocket (RFC 7395) on the REST port: serves the upgrades for `/ws/` offering the
 * `xmpp` sub-protocol, which the shared upgrade dispatcher hands it.
 */
export function createXmppWs(s: Services, opts: { domain?: string } = {}): XmppWsEndpoint {
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

  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    } catch (e) {
      onError('upgrade', e);
      socket.destroy();
    }
  };

  return {
    handleUpgrade,
    close() {
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
