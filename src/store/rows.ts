import type { AdminRow, AppRow, ChatFileRow, GroupKind, GroupMember, GroupRow, MessageRow, OrgRow, UserRow } from './store.js';

/**
 * Rows of the tables both stores share, as the Store port's types. The stores hand values over
 * in their own forms — SQLite flags as 0/1 and JSON as text, PostgreSQL booleans, parsed JSON and
 * int8 as strings — and these readers accept either.
 */

export type Row = Record<string, unknown>;

export const num = (v: unknown): number => Number(v);
export const str = (v: unknown): string => String(v);
const flag = (v: unknown): boolean => v === true || v === 1 || v === 1n;
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const object = (v: unknown): Record<string, unknown> => (typeof v === 'string' ? (JSON.parse(v) as Record<string, unknown>) : (v as Record<string, unknown>));

export function orgFrom(r: Row): OrgRow {
  return {
    id: num(r.id), uuid: str(r.uuid), name: str(r.name), clientId: str(r.client_id),
    clientSecret: str(r.client_secret), credGen: num(r.cred_gen), created: num(r.created),
  };
}

/** An app row joined with its org's name (`org_name`). */
export function appFrom(r: Row): AppRow {
  return {
    id: num(r.id), uuid: str(r.uuid), orgId: num(r.org_id), orgName: str(r.org_name), name: str(r.name),
    clientId: str(r.client_id), clientSecret: str(r.client_secret), credGen: num(r.cred_gen),
    openRegistration: flag(r.open_registration), created: num(r.created),
  };
}

export function adminFrom(r: Row): AdminRow {
  return {
    id: num(r.id), uuid: str(r.uuid), username: str(r.username), email: str(r.email),
    passwordHash: str(r.password_hash), pwGen: num(r.pw_gen), sysadmin: flag(r.sysadmin),
    created: num(r.created), modified: num(r.modified),
  };
}

export function userFrom(r: Row): UserRow {
  return {
    id: num(r.id), appId: num(r.app_id), uuid: str(r.uuid), username: str(r.username),
    passwordHash: str(r.password_hash), pwGen: num(r.pw_gen), activated: flag(r.activated),
    properties: object(r.properties), created: num(r.created), modified: num(r.modified),
  };
}

/** A group row with its owner's name (`owner_name`) and `member_count`. */
export function groupFrom(r: Row): GroupRow {
  return {
    id: num(r.id), appId: num(r.app_id), kind: str(r.kind) as GroupKind, groupId: str(r.gid),
    name: str(r.name), description: str(r.description), public: flag(r.public), membersOnly: flag(r.members_only),
    allowInvites: flag(r.allow_invites), maxUsers: num(r.max_users), ownerId: num(r.owner_id), owner: str(r.owner_name),
    memberCount: num(r.member_count), created: num(r.created), modified: num(r.modified),
  };
}

export const memberFrom = (owner: boolean) => (r: Row): GroupMember => ({ userId: num(r.user_id), username: str(r.username), owner });

export function fileFrom(r: Row): ChatFileRow {
  return {
    id: num(r.id), appId: num(r.app_id), uuid: str(r.uuid), blobKey: str(r.blob_key),
    contentType: str(r.content_type), size: num(r.size), secret: r.secret === null ? null : str(r.secret),
    thumbWidth: numOrNull(r.thumb_width), thumbHeight: numOrNull(r.thumb_height),
    created: num(r.created), modified: num(r.modified),
  };
}

/** A stored message (its text is not kept apart from the record: `text` is null). */
export function messageFrom(r: Row): MessageRow {
  return {
    seq: BigInt(str(r.seq)), appId: num(r.app_id), uuid: str(r.uuid), msgId: str(r.msg_id),
    timestamp: num(r.timestamp), created: num(r.created), from: str(r.from_user), to: str(r.to_id),
    chatType: str(r.chat_type) as MessageRow['chatType'], bodyType: r.body_type === null ? null : str(r.body_type),
    text: null, lat: numOrNull(r.lat), lng: numOrNull(r.lng), entity: r.entity as Buffer,
  };
}

/** The SELECT of a group with its owner's name and member count (the owner is a column, not a member row). */
export const GROUP_SELECT = `SELECT g.*, u.username AS owner_name,
  (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) + 1 AS member_count
  FROM chat_groups g JOIN users u ON u.id = g.owner_id`;

/** The SELECT of an app with its org's name. */
export const APP_SELECT = 'SELECT apps.*, orgs.name AS org_name FROM apps JOIN orgs ON orgs.id = apps.org_id';
