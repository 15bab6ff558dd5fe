import type { Services } from '../../services.js';
import type { AppRow, UserRow } from '../../store/store.js';
import type { Identity } from './stanzas.js';

/** What a bound stream knows about its user. */
export interface BoundSession {
  app: AppRow;
  user: UserRow;
  identity: Identity;
  domain: string;
  /**
   * Whether a refused send's error may echo the message's `<body>`. Web 1.4.13+ (which bind with
   * an `<os>` child) report such an error to the app; 1.4.6 throws on it in its message handler
   * (an undefined `log` call) and Strophe then drops that handler, so it gets the bodiless form.
   */
  errorsCarryBody: boolean;
}

/** A bound stream as the stanza handlers see it: who, the services, and its way out. */
export interface SessionContext extends BoundSession {
  s: Services;
  /** Sends one frame to this client. */
  send(data: string): void;
}

/** An address of the client's own app (spec §3): a user, or a group or chat room on `conference.{domain}`. */
export type Address = { kind: 'user'; name: string; resource: string | null } | { kind: 'room'; name: string; resource: string | null };

/**
 * Reads `{appkey}_{name}@{domain}[/resource]` or `…@conference.{domain}[/nick]`; null for any
 * other JID (another app, another server, no localpart).
 */
export function parseAddress(jid: string | undefined, b: BoundSession): Address | null {
  if (jid === undefined) return null;
  const slash = jid.indexOf('/');
  const bare = slash < 0 ? jid : jid.slice(0, slash);
  const resource = slash < 0 ? null : jid.slice(slash + 1);
  const at = bare.lastIndexOf('@');
  if (at <= 0) return null;
  const local = bare.slice(0, at);
  const domain = bare.slice(at + 1).toLowerCase();
  const prefix = `${b.identity.org}#${b.identity.app}_`.toLowerCase();
  if (local.slice(0, prefix.length).toLowerCase() !== prefix) return null;
  const name = local.slice(prefix.length);
  if (name === '' || name.length > 256) return null;
  if (domain === b.domain) return { kind: 'user', name, resource };
  if (domain === `conference.${b.domain}`) return { kind: 'room', name, resource };
  return null;
}

/** The bare JID of another user of the client's app. */
export function userJid(b: BoundSession, username: string): string {
  return `${b.identity.org}#${b.identity.app}_${username}@${b.domain}`;
}

/** The bare JID of a group or chat room of the client's app. */
export function roomJid(b: BoundSession, groupId: string): string {
  return `${b.identity.org}#${b.identity.app}_${groupId}@conference.${b.domain}`;
}
