import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { buildServer } from './http/server.js';
import { JSON_WS_PROTOCOL } from './realtime/json-ws/client-frame.js';
import { createJsonWs } from './realtime/json-ws/json-ws-server.js';
import { attachWsUpgrade } from './realtime/ws-upgrade.js';
import { createXmppWs } from './realtime/xmpp-ws/server.js';
import { openBus } from './bus/open-bus.js';
import { buildServices, closeServices, type Services } from './services.js';
import { PostgresStore } from './store/postgres/postgres-store.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';
import type { Store } from './store/store.js';
import { randomToken, reseedUuid } from './util/ids.js';

/** A running server. */
export interface Chatvault {
  services: Services;
  http: FastifyInstance;
  /** The base URL it listens on (http://host:port). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Lines shown once to the person starting a new server (first-start credentials). */
export type Announce = (lines: string[]) => void;

// Longest a stop waits for requests still being received or answered.
const CLOSE_GRACE_MS = 5000;

/** The store chosen by the configuration (not yet opened): PostgreSQL when DATABASE_URL is set, else SQLite in the data folder. */
export function openStore(config: Config): Store {
  if (config.databaseUrl) return new PostgresStore(config.databaseUrl, { groupCommitMax: config.groupCommitMax, poolMax: config.databasePoolMax });
  return new SqliteStore(path.join(config.dataDir, 'chatvault.db'), config.groupCommitMax);
}

/** Opens the store (migrated) and the bus and wires the services; creates the admin and demo app on first start. */
export async function prepare(config: Config, announce: Announce = () => {}): Promise<Services> {
  reseedUuid();
  const store = openStore(config);
  await store.open();
  // Nodes starting together on an empty database agree on one key: the first to store it wins.
  const key = await store.claimMeta('signing_key', randomBytes(32).toString('base64'));
  const signingKey = Buffer.from(key, 'base64');
  const nodeId = await store.claimNodeId();
  // A node that cannot reach its bus fails to start rather than serve caches nobody invalidates.
  const bus = await openBus(config, signingKey).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  const s = buildServices(config, store, signingKey, bus, nodeId);
  await Promise.all([s.invalidation.start(), s.realtime.start()]).catch(async (e: unknown) => {
    await closeServices(s);
    throw e;
  });
  const lines: string[] = [];
  let adminId: number | undefined;
  if (config.admin) {
    adminId = (await s.tenants.ensureSysadmin(config.admin.username, config.admin.password)).id;
  } else if (store.fresh) {
    const password = randomToken(12);
    adminId = (await s.tenants.ensureSysadmin('admin', password)).id;
    lines.push(`system administrator: admin / ${password}  (set CHATVAULT_ADMIN=user:password to choose your own)`);
  }
  if (store.fresh && config.demoApp) {
    const org = await s.tenants.ensureOrg('demo', adminId);
    const app = await s.tenants.createApp(org, 'chat');
    const c = s.tenants.credentials(app);
    lines.push(
      `demo app created: appkey ${c.appkey}`,
      `  client_id     ${c.client_id}`,
      `  client_secret ${c.client_secret}`,
      `  get a token:  curl -X POST ${config.publicUrl}/demo/chat/token -d '{"grant_type":"client_credentials","client_id":"${c.client_id}","client_secret":"${c.client_secret}"}'`,
    );
  }
  if (lines.length > 0) announce(lines);
  return s;
}

/** Starts a server: store, services and HTTP listener. */
export async function startChatvault(config: Config, announce?: Announce): Promise<Chatvault> {
  const services = await prepare(config, announce);
  const http = buildServer(services);
  const xmpp = createXmppWs(services, { domain: config.xmppDomain });
  const json = createJsonWs(services);
  const detachUpgrade = attachWsUpgrade(http.server, [{ protocol: 'xmpp', handleUpgrade: xmpp.handleUpgrade }, { protocol: JSON_WS_PROTOCOL, handleUpgrade: json.handleUpgrade }]);
  try {
    await http.listen({ port: config.port, host: config.host });
  } catch (e) {
    await closeServices(services);
    throw e;
  }
  const addr = http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  if (config.port === 0 && config.publicUrl.endsWith(':0')) {
    // Port 0 means "any free port": make uri fields point at the port actually taken.
    config.publicUrl = config.publicUrl.replace(/:0$/, `:${port}`);
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    services,
    http,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    async close() {
      // Keep-alive connections that were busy when the stop began go idle later, and a client may
      // hold one open for the whole keep-alive timeout (72 s): close them as they go idle, and cut
      // whatever is still open after a grace period, so a stop never waits on a client.
      // WebSocket streams first: upgraded sockets are not HTTP connections, so http.close() would wait on them.
      detachUpgrade();
      xmpp.close();
      json.close();
      const sweep = setInterval(() => http.server.closeIdleConnections(), 100);
      const cut = setTimeout(() => http.server.closeAllConnections(), CLOSE_GRACE_MS);
      try {
        await http.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(cut);
      }
      // After the HTTP server: the last requests' invalidations still go out.
      await closeServices(services);
    },
  };
}
