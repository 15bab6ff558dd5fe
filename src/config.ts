import path from 'node:path';
import { DEFAULT_GROUP_COMMIT_MAX } from './store/group-commit.js';

/** Every setting of the server, typed. Built from environment variables, then flags. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  publicUrl: string;
  admin: { username: string; password: string } | null;
  tokenTtlSeconds: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  messageMaxBytes: number;
  bodyMaxBytes: number;
  fileMaxBytes: number;
  groupCommitMax: number;
  demoApp: boolean;
  archiveTz: string;
  archiveLinkTtlSeconds: number;
  databaseUrl: string | null;
  databasePoolMax: number;
  redisUrl: string | null;
  corsOrigins: '*' | string[];
  xmppDomain: string;
}

/** A setting as the README's configuration table describes it. */
export interface SettingDoc {
  env: string;
  flag: string;
  default: string;
  description: string;
}

export class ConfigError extends Error {
  constructor(readonly setting: string, message: string) {
    super(`invalid configuration: ${setting}: ${message}`);
  }
}

type Raw = Record<string, string | undefined>;

interface Setting<K extends keyof Config> extends SettingDoc {
  key: K;
  parse(raw: string | undefined): Config[K];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function intIn(name: string, min: number, max: number, fallback: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got '${raw}'`);
    const n = Number(raw.trim());
    if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

// One list is the source of both the parser and the README table (see `chatvault config --markdown`).
const SETTINGS = [
  {
    key: 'port', env: 'PORT', flag: '--port', default: '5080',
    description: 'TCP port of the REST API (0 picks a free port).',
    parse: intIn('PORT', 0, 65535, 5080),
  },
  {
    key: 'host', env: 'HOST', flag: '--host', default: '127.0.0.1',
    description: 'Address to listen on; `0.0.0.0` for every interface.',
    parse: (raw) => {
      const v = (raw ?? '127.0.0.1').trim();
      if (v === '' || /\s/.test(v)) throw new ConfigError('HOST', `not an address: '${raw}'`);
      return v;
    },
  },
  {
    key: 'dataDir', env: 'DATA_DIR', flag: '--data-dir', default: './data',
    description: 'Folder of the embedded SQLite database and of uploaded chat files (`files/`); created when missing.',
    parse: (raw) => {
      const v = (raw ?? './data').trim();
      if (v === '') throw new ConfigError('DATA_DIR', 'must not be empty');
      return path.resolve(v);
    },
  },
  {
    key: 'publicUrl', env: 'PUBLIC_URL', flag: '--public-url', default: 'http://HOST:PORT',
    description: 'Base URL clients reach the server at; used in `uri` fields and file URLs.',
    parse: (raw) => {
      if (raw === undefined || raw.trim() === '') return '';
      let u: URL;
      try {
        u = new URL(raw.trim());
      } catch {
        throw new ConfigError('PUBLIC_URL', `not a URL: '${raw}'`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError('PUBLIC_URL', 'must start with http:// or https://');
      return u.toString().replace(/\/+$/, '');
    },
  },
  {
    key: 'admin', env: 'CHATVAULT_ADMIN', flag: '--admin', default: '(generated on first start)',
    description: '`username:password` of the system administrator, created or updated at start.',
    parse: (raw) => {
      if (raw === undefined || raw === '') return null;
      const i = raw.indexOf(':');
      if (i <= 0 || i === raw.length - 1) throw new ConfigError('CHATVAULT_ADMIN', 'expected username:password');
      const username = raw.slice(0, i);
      if (!/^[a-zA-Z0-9_.@-]{1,64}$/.test(username)) throw new ConfigError('CHATVAULT_ADMIN', `username '${username}' is not legal`);
      return { username, password: raw.slice(i + 1) };
    },
  },
  {
    key: 'tokenTtlSeconds', env: 'TOKEN_TTL', flag: '--token-ttl', default: '5184000',
    description: 'Default lifetime of access tokens in seconds (60 days); a request may ask for another with `ttl`.',
    parse: intIn('TOKEN_TTL', 1, 10 * 365 * 86400, 5184000),
  },
  {
    key: 'logLevel', env: 'LOG_LEVEL', flag: '--log-level', default: 'info',
    description: `Log level: ${LOG_LEVELS.join(', ')}.`,
    parse: (raw) => {
      const v = (raw ?? 'info').trim().toLowerCase();
      const found = LOG_LEVELS.find((l) => l === v);
      if (!found) throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got '${raw}'`);
      return found;
    },
  },
  {
    key: 'messageMaxBytes', env: 'MESSAGE_MAX_BYTES', flag: '--message-max-bytes', default: '5120',
    description: 'Largest `POST /messages` body; larger bodies get 413 (Easemob allowed 5 KB).',
    parse: intIn('MESSAGE_MAX_BYTES', 256, 16 * 1024 * 1024, 5120),
  },
  {
    key: 'bodyMaxBytes', env: 'BODY_MAX_BYTES', flag: '--body-max-bytes', default: '1048576',
    description: 'Largest JSON body of any other request; larger bodies get 413.',
    parse: intIn('BODY_MAX_BYTES', 1024, 256 * 1024 * 1024, 1048576),
  },
  {
    key: 'fileMaxBytes', env: 'FILE_MAX_BYTES', flag: '--file-max-bytes', default: '10485760',
    description: 'Largest chat file upload (`POST /chatfiles`); larger files get 413 and nothing is kept (Easemob allowed 10 MB).',
    parse: intIn('FILE_MAX_BYTES', 1, 4 * 1024 * 1024 * 1024, 10485760),
  },
  {
    key: 'groupCommitMax', env: 'GROUP_COMMIT_MAX', flag: '--group-commit-max', default: String(DEFAULT_GROUP_COMMIT_MAX),
    description: 'Most writes committed together in one fsync\'d transaction (a busy SQLite writer commits everything that waits at once: each commit rewrites every index page it touches).',
    parse: intIn('GROUP_COMMIT_MAX', 1, 100000, DEFAULT_GROUP_COMMIT_MAX),
  },
  {
    key: 'demoApp', env: 'CHATVAULT_DEMO', flag: '--demo', default: 'true',
    description: 'On first start with an empty data folder, create org `demo` with app `chat` and print its credentials.',
    parse: (raw) => {
      const v = (raw ?? 'true').trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError('CHATVAULT_DEMO', `expected true or false, got '${raw}'`);
    },
  },
  {
    key: 'archiveTz', env: 'ARCHIVE_TZ', flag: '--archive-tz', default: '+00:00',
    description: 'Time zone in which `GET /chatmessages/{YYYYMMDDHH}` reads the hour when the request has no `tz` (`+08:00` is Beijing, as old Easemob clients assumed).',
    parse: (raw) => {
      const v = (raw ?? '+00:00').trim();
      if (!/^(Z|UTC|[+-]\d{2}:?\d{2})$/i.test(v)) throw new ConfigError('ARCHIVE_TZ', `expected an offset such as +08:00, got '${raw}'`);
      return v;
    },
  },
  {
    key: 'archiveLinkTtlSeconds', env: 'ARCHIVE_LINK_TTL', flag: '--archive-link-ttl', default: '1800',
    description: 'Seconds an hourly-archive download link stays valid.',
    parse: intIn('ARCHIVE_LINK_TTL', 1, 7 * 86400, 1800),
  },
  {
    key: 'databaseUrl', env: 'DATABASE_URL', flag: '--database-url', default: '(SQLite in DATA_DIR)',
    description: 'A `postgres://user@host:5432/db` URL selects the PostgreSQL store, which several nodes can share (see docs/scaling.md); `?schema=name` keeps chatvault in its own schema.',
    parse: (raw) => urlOf('DATABASE_URL', raw, ['postgres:', 'postgresql:']),
  },
  {
    key: 'databasePoolMax', env: 'DATABASE_POOL_MAX', flag: '--database-pool-max', default: '10',
    description: 'Most PostgreSQL connections one node opens.',
    parse: intIn('DATABASE_POOL_MAX', 2, 1000, 10),
  },
  {
    key: 'redisUrl', env: 'REDIS_URL', flag: '--redis-url', default: '(in-process)',
    description: 'A `redis://host:6379` URL carries events between nodes (credential changes, cache invalidation); without it events stay inside the process.',
    parse: (raw) => urlOf('REDIS_URL', raw, ['redis:', 'rediss:']),
  },
  {
    key: 'corsOrigins', env: 'CORS_ORIGINS', flag: '--cors-origins', default: '*',
    description: 'Origins browsers may call the API from: `*` (any; safe, as auth is by bearer token, never by cookie) or a comma-separated list such as `https://app.example.com,http://localhost:3000`.',
    parse: (raw) => {
      const v = (raw ?? '*').trim();
      if (v === '' || v === '*') return '*';
      const list = v.split(',').map((o) => o.trim()).filter((o) => o !== '');
      for (const o of list) {
        let u: URL;
        try {
          u = new URL(o);
        } catch {
          throw new ConfigError('CORS_ORIGINS', `not an origin: '${o}'`);
        }
        if (u.origin !== o) throw new ConfigError('CORS_ORIGINS', `not an origin (scheme://host[:port], no path): '${o}'`);
      }
      return list;
    },
  },
  {
    key: 'xmppDomain', env: 'XMPP_DOMAIN', flag: '--xmpp-domain', default: 'easemob.com',
    description: 'XMPP domain of the real-time endpoint (`/ws/`): JIDs are `{org}#{app}_{user}@DOMAIN`, groups and chat rooms `…@conference.DOMAIN`; set the web SDK\'s `domain` to the same value.',
    parse: (raw) => {
      const v = (raw ?? '').trim().toLowerCase();
      if (v === '') return 'easemob.com';
      // A JID domainpart that SDKs also splice into `conference.{domain}`: plain DNS labels only.
      if (v.length > 253 || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(v)) {
        throw new ConfigError('XMPP_DOMAIN', `expected a domain name such as easemob.com, got '${raw}'`);
      }
      return v;
    },
  },
] satisfies Setting<keyof Config>[];

/** An optional URL setting whose scheme must be one of `protocols`. */
function urlOf(name: string, raw: string | undefined, protocols: string[]): string | null {
  const v = (raw ?? '').trim();
  if (v === '') return null;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError(name, 'not a URL');
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  return v;
}

/** Builds the configuration from environment variables overridden by flag values (keyed by env name). */
export function loadConfig(env: Raw = process.env, flags: Raw = {}): Config {
  const merged: Raw = { ...env };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  const out: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) out[s.key] = s.parse(merged[s.env]);
  const cfg = out as unknown as Config;
  if (cfg.publicUrl === '') {
    const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host;
    cfg.publicUrl = `http://${host.includes(':') ? `[${host}]` : host}:${cfg.port}`;
  }
  return cfg;
}

/** The documented settings, in table order. */
export function settingDocs(): SettingDoc[] {
  return SETTINGS.map(({ env, flag, default: d, description }) => ({ env, flag, default: d, description }));
}

/** The configuration table as Markdown, as it stands in the README. */
export function settingsMarkdown(): string {
  const rows = settingDocs().map((s) => `| \`${s.env}\` | \`${s.flag}\` | \`${s.default}\` | ${s.description} |`);
  return ['| variable | flag | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
