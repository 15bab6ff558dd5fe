import type { BlobStore } from '../files/blob-store.js';
import type { QlExpr } from '../ql/ast.js';

/**
 * The Store port: everything chatvault keeps, behind one interface. Each adapter (sqlite/,
 * later postgres/) implements it and passes the same contract tests (test/contract/).
 * Every method is async so that adapters with a network round trip fit the same shape.
 */

export interface OrgRow {
  id: number;
  uuid: string;
  name: string;
  clientId: string;
  clientSecret: string;
  credGen: number;
  created: number;
}

export interface AppRow {
  id: number;
  uuid: string;
  orgId: number;
  orgName: string;
  name: string;
  clientId: string;
  clientSecret: string;
  credGen: number;
  openRegistration: boolean;
  created: number;
}

export interface AdminRow {
  id: number;
  uuid: string;
  username: string;
  email: string;
  passwordHash: string;
  pwGen: number;
  sysadmin: boolean;
  created: number;
  modified: number;
}

export interface UserRow {
  id: number;
  appId: number;
  uuid: string;
  username: string;
  passwordHash: string;
  pwGen: number;
  activated: boolean;
  properties: Record<string, unknown>;
  created: number;
  modified: number;
}

export interface NewUser {
  uuid: string;
  username: string;
  passwordHash: string;
  properties: Record<string, unknown>;
  created: number;
}

export interface UserPatch {
  passwordHash?: string;
  activated?: boolean;
  properties?: Record<string, unknown>;
  modified: number;
}

/** A chat message as it is stored; `entity` is its rendered JSON (the export record). */
export interface NewMessage {
  appId: number;
  uuid: string;
  msgId: string;
  timestamp: number;
  created: number;
  from: string;
  to: string;
  chatType: 'chat' | 'groupchat' | 'chatroom';
  /** Type of the first body, lower-cased (indexed for `payload.bodies.type`). */
  bodyType: string | null;
  /** The text of the txt bodies, for the full-text index behind `contains`. */
  text: string | null;
  /** Position of a loc body, for `location within`. */
  lat: number | null;
  lng: number | null;
  /** The export record (the entity of `GET /chatmessages`) as UTF-8 JSON. */
  entity: Buffer;
  /**
   * Lower-cased users the message is delivered to (its recipients when sent; none for imported
   * history). Each gets the message in its inbox, undelivered until it acks, in the message's
   * own transaction.
   */
  recipients?: string[];
  /**
   * The sender's id for this send: (app, sender, target, clientId) is unique, so a repeated send
   * fails with DuplicateError and stores nothing (see Store.clientSend).
   */
  clientId?: string;
  /**
   * Filled in by an insert, for a store that commits one write at a time (SQLite's one writer):
   * parallel to `recipients`, the seq of each recipient's inbox row just before this message
   * (0n for none). A session whose client has every message up to that seq may push this one at
   * once, with no store read: nothing it has not pushed lies between. Absent where concurrent
   * writers make it unknowable (PostgreSQL).
   */
  inboxPrevious?: bigint[];
}

export interface MessageRow extends NewMessage {
  /** The insertion sequence: one growing 64-bit order over every stored message. */
  seq: bigint;
}

/** A sort key of a message query: a ql field, or the distance from a `within` centre. */
export interface MessageSortKey {
  field: string;
  dir: 'asc' | 'desc';
}

/** One page of a message walk, as the export engine asks for it. */
export interface MessageQuery {
  appId: number;
  where: QlExpr | null;
  /** Sort keys; the insertion sequence always follows as the last tie-breaker, in the last key's direction. */
  orderBy: MessageSortKey[];
  /** Centre for the `@distance` sort key. */
  near: { lat: number; lng: number } | null;
  /** Keyset: the sort-key values and seq of the last message of the previous page. */
  after: { keys: unknown[]; seq: bigint } | null;
  /** Only messages with seq above this (an incremental export's `since`). */
  minSeq: bigint;
  /** Only messages with seq at or below this: the walk's high-water mark. */
  maxSeq: bigint;
  limit: number;
}

/** A message found by a query: its seq, its sort-key values (for the next cursor) and its record. */
export interface MessageHit {
  seq: bigint;
  keys: unknown[];
  entity: Buffer;
}

/** A page of stored records already joined into one buffer (see Store.findMessagesSpliced). */
export interface SplicedPage {
  /** Records in the page (at most the query's limit). */
  count: number;
  /** True when more messages match after this page. */
  more: boolean;
  /** The records, joined by the separator. */
  body: Buffer;
  /** Keyset position of the last record, or null for an empty page. */
  last: { seq: bigint; keys: unknown[] } | null;
}

/** Keyset position of a user listing: created time, then insertion order. */
export interface UserPosition {
  created: number;
  id: number;
}

export class DuplicateError extends Error {
  constructor(readonly value: string) {
    super(`duplicate: ${value}`);
  }
}

export interface Store {
  /** Opens the store and migrates its schema to the current version. */
  open(): Promise<void>;
  /** Flushes pending writes and releases the store. */
  close(): Promise<void>;
  /** True when the store held no data before this process opened it. */
  readonly fresh: boolean;
  /** The adapter name, shown by /status. */
  readonly kind: string;

  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  /** Stores `value` under `key` unless a value is there; resolves with the stored one (the first writer of all nodes wins). */
  claimMeta(key: string, value: string): Promise<string>;
  /** A message-id node number (0..1023) for this process, distinct among the last 1,024 started on this store. */
  claimNodeId(): Promise<number>;
  /** A BlobStore inside this store that every node sharing it sees, or null (chat files then live in DATA_DIR). */
  sharedBlobStore(): BlobStore | null;

  createOrg(org: Omit<OrgRow, 'id' | 'credGen'>): Promise<OrgRow>;
  getOrgByName(name: string): Promise<OrgRow | null>;
  getOrgById(id: number): Promise<OrgRow | null>;
  getOrgByClientId(clientId: string): Promise<OrgRow | null>;

  /** Creates or updates an admin user by username (case-insensitive). */
  upsertAdmin(admin: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow>;
  createAdmin(admin: Omit<AdminRow, 'id' | 'pwGen' | 'modified'>): Promise<AdminRow>;
  /** Finds an admin by username or e-mail, case-insensitively. */
  findAdmin(nameOrEmail: string): Promise<AdminRow | null>;
  getAdminById(id: number): Promise<AdminRow | null>;
  addOrgAdmin(orgId: number, adminId: number): Promise<void>;
  orgsOfAdmin(adminId: number): Promise<OrgRow[]>;
  isOrgAdmin(orgId: number, adminId: number): Promise<boolean>;

  createApp(app: Omit<AppRow, 'id' | 'credGen' | 'orgName'>): Promise<AppRow>;
  /** Finds an app of an org by name (case-insensitive) or by its uuid. */
  getApp(orgName: string, nameOrUuid: string): Promise<AppRow | null>;
  getAppById(id: number): Promise<AppRow | null>;
  listApps(orgId: number): Promise<AppRow[]>;
  /** Replaces the app's credentials and bumps its credential generation (old app tokens die). */
  setAppCredentials(appId: number, clientId: string, clientSecret: string): Promise<AppRow>;
  setOpenRegistration(appId: number, open: boolean): Promise<AppRow>;

  /** Creates users all-or-nothing; throws DuplicateError naming the first taken username. */
  createUsers(appId: number, users: NewUser[]): Promise<UserRow[]>;
  /** Finds a user by username (case-insensitive) or uuid. */
  getUser(appId: number, nameOrUuid: string): Promise<UserRow | null>;
  getUserById(id: number): Promise<UserRow | null>;
  /** Users oldest first, after a keyset position. */
  listUsers(appId: number, after: UserPosition | null, limit: number): Promise<UserRow[]>;
  updateUser(userId: number, patch: UserPatch): Promise<UserRow>;
  /** Deletes users by id; returns the deleted rows. */
  deleteUsers(userIds: number[]): Promise<UserRow[]>;

  /** Stores messages durably (group commit); resolves with their seqs once on disk. */
  insertMessages(messages: NewMessage[]): Promise<bigint[]>;
  /**
   * Whether inserts get their seqs in the order they are called, even when one of them fails:
   * then a caller may start its next insert before the previous one is durable and still keep
   * its messages in order (a connection's sends). SQLite's one writer does; PostgreSQL retries a
   * failed group commit's writes after the commits that queued behind it, so it does not.
   */
  readonly insertsInCallOrder: boolean;
  /** One page of a message query (see MessageQuery); never OFFSET, always a keyset. */
  findMessages(q: MessageQuery): Promise<MessageHit[]>;
  /**
   * The same page as findMessages, with its records joined into one buffer by `separator` (the
   * bulk read path: paged walks and streams of whole records).
   */
  findMessagesSpliced(q: MessageQuery, separator: string): Promise<SplicedPage>;
  /**
   * The high-water mark: the largest seq below which no message can still commit. A walk that
   * reads only seq <= this sees a set that no concurrent writer can change.
   */
  highWaterMark(): Promise<bigint>;
  /** The seq of a message of an app by its msg_id, or null. */
  messageSeq(appId: number, msgId: string): Promise<bigint | null>;
  /**
   * Count and seq fingerprint of an app's messages with timestamp in [from, to): tells whether
   * a time range changed (an import or a purge) since an archive of it was built.
   */
  messageStats(appId: number, from: number, to: number): Promise<{ count: number; fingerprint: string }>;
  /**
   * Deletes messages of an app by seq; resolves with the seqs this call deleted (a message that
   * a concurrent delete took first is not among them, so no purge reports a message twice).
   */
  deleteMessages(appId: number, seqs: bigint[]): Promise<bigint[]>;
  /** Messages of an app in insertion order after `afterSeq` (tests and simple walks). */
  messagesAfter(appId: number, afterSeq: bigint, limit: number): Promise<MessageRow[]>;
  countMessages(appId: number): Promise<number>;

  // ---- Contacts, user block lists, offline messages (relations between users of one app) ----
  /** Makes two users friends of each other (both directions); an existing friendship stays as is. */
  addContact(ownerId: number, friendId: number, created: number): Promise<void>;
  /** Ends a friendship in both directions; a missing one is no error. */
  removeContact(ownerId: number, friendId: number): Promise<void>;
  /** Usernames of a user's friends, in the order they became friends. */
  listContacts(ownerId: number): Promise<string[]>;
  /** Adds users to a user's block list in one transaction; already blocked ones stay as they were. */
  addBlocks(ownerId: number, blockedIds: number[], created: number): Promise<void>;
  /** Takes a user off a user's block list; a missing entry is no error. */
  removeBlock(ownerId: number, blockedId: number): Promise<void>;
  /** Usernames on a user's block list, in the order they were blocked. */
  listBlocks(ownerId: number): Promise<string[]>;

  // ---- Real-time delivery: each recipient's inbox (written with the message, see NewMessage.recipients) ----
  /** The user's undelivered messages with seq above `afterSeq`, oldest first. */
  pendingDeliveries(appId: number, username: string, afterSeq: bigint, limit: number): Promise<MessageRow[]>;
  /** How many messages wait for the user's ack. */
  countPendingDeliveries(appId: number, username: string): Promise<number>;
  /** Whether the user acked the message (by msg_id); null when it was not delivered to the user. */
  deliveryStatus(appId: number, username: string, msgId: string): Promise<'delivered' | 'undelivered' | null>;
  /**
   * Marks messages (by msg_id) delivered to the user; resolves with those that were undelivered,
   * each with its sender and target (what its delivery receipt needs, with no read of its own).
   */
  markDelivered(appId: number, username: string, msgIds: readonly string[]): Promise<AckedMessage[]>;
  /** The user's inbox (delivered or not) with seq in (afterSeq, maxSeq], oldest first. */
  inbox(appId: number, username: string, afterSeq: bigint, maxSeq: bigint, limit: number): Promise<MessageRow[]>;
  /** The messages an earlier send with this client id stored, by lower-cased target (empty when none). */
  clientSend(appId: number, sender: string, clientId: string): Promise<Map<string, SentMessage>>;

  // ---- Groups and chat rooms (one table, told apart by GroupKind) ----
  /**
   * Creates a group with its owner and members in one transaction, unless a user would pass
   * `maxJoined` groups of the kind (then nothing is written). Throws DuplicateError when the
   * group id is taken.
   */
  createGroup(appId: number, group: NewGroup, maxJoined: number): Promise<GroupRow | JoinRefusal>;
  /** Groups of a kind by their public ids, in the order asked; unknown ids are left out. */
  getGroups(appId: number, kind: GroupKind, groupIds: string[]): Promise<GroupRow[]>;
  /** Groups of a kind, newest first, below a row id (the keyset); every one when limit is null. */
  listGroups(appId: number, kind: GroupKind, beforeId: number | null, limit: number | null): Promise<GroupRow[]>;
  updateGroup(id: number, patch: GroupPatch): Promise<GroupRow>;
  /** Makes a member the owner; the old owner stays as a member. */
  setGroupOwner(id: number, userId: number, modified: number): Promise<GroupRow>;
  /** Deletes groups (their members and block lists go with them). */
  deleteGroups(ids: number[]): Promise<void>;
  /** Deletes every group and room that one of the users owns; resolves with how many. */
  deleteGroupsOwnedBy(userIds: number[]): Promise<number>;
  /** The owner first, then the members in the order they joined. */
  groupMembers(id: number): Promise<GroupMember[]>;
  /**
   * Adds members in one transaction unless the group would pass its maxUsers or a user would pass
   * `maxJoined` groups of the kind (then nothing is written). Existing members are left as they are.
   */
  addGroupMembers(id: number, userIds: number[], joined: number, maxJoined: number): Promise<JoinRefusal | null>;
  removeGroupMembers(id: number, userIds: number[]): Promise<void>;
  /** The groups of a kind a user owns or is a member of, oldest first. */
  groupsOfUser(appId: number, kind: GroupKind, userId: number): Promise<GroupRow[]>;
  /** The users on a group's block list, in the order they were blocked. */
  groupBlocks(id: number): Promise<GroupMember[]>;
  /** Puts users on a group's block list and takes them out of its members, in one transaction. */
  blockGroupUsers(id: number, userIds: number[], created: number): Promise<void>;
  unblockGroupUsers(id: number, userIds: number[]): Promise<void>;

  // ---- Chat files (spec §6): metadata of uploads; the bytes live in the BlobStore ----
  /** Records an uploaded file. */
  createChatFile(file: NewChatFile): Promise<ChatFileRow>;
  /** A file of the app by uuid (lower-case), or null; another app's file is null too. */
  getChatFile(appId: number, uuid: string): Promise<ChatFileRow | null>;
}

/** A stored message as its sender learns of it: its id and its send time. */
export interface SentMessage {
  msgId: string;
  /** Send time, ms. */
  timestamp: number;
}

/** A message a user has just acknowledged: its id as the user spelled it, who sent it, and where to. */
export interface AckedMessage {
  msgId: string;
  from: string;
  to: string;
  chatType: NewMessage['chatType'];
}

/** Chat groups and chat rooms share one shape and one table. */
export type GroupKind = 'group' | 'room';

export interface GroupRow {
  /** The row id (internal). */
  id: number;
  appId: number;
  kind: GroupKind;
  /** The public id: a numeric string. */
  groupId: string;
  name: string;
  description: string;
  public: boolean;
  membersOnly: boolean;
  allowInvites: boolean;
  /** Most members, the owner included. */
  maxUsers: number;
  ownerId: number;
  /** The owner's username in its stored case. */
  owner: string;
  /** Members, the owner included. */
  memberCount: number;
  created: number;
  modified: number;
}

export type NewGroup = Omit<GroupRow, 'id' | 'appId' | 'owner' | 'memberCount' | 'modified'> & { memberIds: number[] };

export interface GroupPatch {
  name?: string;
  description?: string;
  public?: boolean;
  membersOnly?: boolean;
  allowInvites?: boolean;
  maxUsers?: number;
  modified: number;
}

/** A user in a group's member or block list. */
export interface GroupMember {
  userId: number;
  username: string;
  owner: boolean;
}

/** Why a membership change was refused: the group is full, or a user is in too many groups. */
export type JoinRefusal = { refused: 'full' } | { refused: 'too_many'; userId: number };

/** An uploaded chat file. */
export interface ChatFileRow {
  id: number;
  appId: number;
  uuid: string;
  /** Where the bytes are in the BlobStore. */
  blobKey: string;
  contentType: string;
  size: number;
  /** The share-secret a download must present; null when the file is not restricted. */
  secret: string | null;
  /** The thumbnail box asked for at upload (`thumbnail-width`/`-height`); null = the default. */
  thumbWidth: number | null;
  thumbHeight: number | null;
  created: number;
  modified: number;
}

export type NewChatFile = Omit<ChatFileRow, 'id'>;
