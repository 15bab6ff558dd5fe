import type Database from 'better-sqlite3';
import {
  DuplicateError,
  type GroupKind, type GroupMember, type GroupPatch, type GroupRow, type JoinRefusal, type NewGroup,
} from '../store.js';
import { GROUP_SELECT, groupFrom, memberFrom, type Row } from '../rows.js';


/**
 * Chat groups and chat rooms of the SQLite store: one table for both kinds, with member and
 * block-list tables. Membership limits are checked inside the transaction that changes
 * membership, so concurrent requests cannot push a group past its maxUsers.
 */
export class SqliteGroups {
  private readonly s;

  constructor(readonly db: Database.Database) {
    const userList = (table: string) =>
      db.prepare(`SELECT r.user_id, u.username FROM ${table} r JOIN users u ON u.id = r.user_id WHERE r.group_id = ? ORDER BY r.id`);
    this.s = {
      insert: db.prepare(
        `INSERT INTO chat_groups (app_id, kind, gid, name, description, public, members_only, allow_invites, max_users, owner_id, created, modified)
         VALUES (@appId, @kind, @groupId, @name, @description, @public, @membersOnly, @allowInvites, @maxUsers, @ownerId, @created, @created)`,
      ),
      byId: db.prepare(`${GROUP_SELECT} WHERE g.id = ?`),
      byGid: db.prepare(`${GROUP_SELECT} WHERE g.app_id = ? AND g.kind = ? AND g.gid = ?`),
      all: db.prepare(`${GROUP_SELECT} WHERE g.app_id = ? AND g.kind = ? ORDER BY g.id DESC`),
      page: db.prepare(`${GROUP_SELECT} WHERE g.app_id = ? AND g.kind = ? AND g.id < ? ORDER BY g.id DESC LIMIT ?`),
      ofUser: db.prepare(
        `${GROUP_SELECT} WHERE g.app_id = @appId AND g.kind = @kind
         AND (g.owner_id = @userId OR g.id IN (SELECT group_id FROM group_members WHERE user_id = @userId)) ORDER BY g.id`,
      ),
      joinedCount: db
        .prepare(
          `SELECT (SELECT count(*) FROM group_members m JOIN chat_groups g ON g.id = m.group_id WHERE m.user_id = @userId AND g.kind = @kind)
                + (SELECT count(*) FROM chat_groups WHERE owner_id = @userId AND kind = @kind)`,
        )
        .pluck(),
      isMember: db.prepare('SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?').pluck(),
      addMember: db.prepare('INSERT OR IGNORE INTO group_members (group_id, user_id, joined) VALUES (?, ?, ?)'),
      removeMember: db.prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?'),
      members: userList('group_members'),
      setOwner: db.prepare('UPDATE chat_groups SET owner_id = ?, modified = ? WHERE id = ?'),
      delete: db.prepare('DELETE FROM chat_groups WHERE id = ?'),
      deleteOwned: db.prepare('DELETE FROM chat_groups WHERE owner_id = ?'),
      blocks: userList('group_blocks'),
      addBlock: db.prepare('INSERT OR IGNORE INTO group_blocks (group_id, user_id, created) VALUES (?, ?, ?)'),
      removeBlock: db.prepare('DELETE FROM group_blocks WHERE group_id = ? AND user_id = ?'),
    };
  }

  private get(id: number): GroupRow {
    return groupFrom(this.s.byId.get(id) as Row);
  }

  /** The first user that would pass maxJoined groups of the kind by joining one more. */
  private overQuota(kind: GroupKind, userIds: number[], maxJoined: number): JoinRefusal | null {
    const userId = userIds.find((u) => Number(this.s.joinedCount.get({ userId: u, kind })) >= maxJoined);
    return userId === undefined ? null : { refused: 'too_many', userId };
  }

  createGroup(appId: number, g: NewGroup, maxJoined: number): GroupRow | JoinRefusal {
    return this.db.transaction((): GroupRow | JoinRefusal => {
      if (g.memberIds.length + 1 > g.maxUsers) return { refused: 'full' };
      const refusal = this.overQuota(g.kind, [g.ownerId, ...g.memberIds], maxJoined);
      if (refusal) return refusal;
      let id: number;
      try {
        const { memberIds: _members, ...row } = g;
        const flags = { public: +row.public, membersOnly: +row.membersOnly, allowInvites: +row.allowInvites };
        id = Number(this.s.insert.run({ ...row, ...flags, appId }).lastInsertRowid);
      } catch (e) {
        if (e instanceof Error && 'code' in e && String(e.code).startsWith('SQLITE_CONSTRAINT_UNIQUE')) throw new DuplicateError(g.groupId);
        throw e;
      }
      for (const u of g.memberIds) this.s.addMember.run(id, u, g.created);
      return this.get(id);
    })();
  }

  getGroups(appId: number, kind: GroupKind, groupIds: string[]): GroupRow[] {
    return groupIds.flatMap((gid) => {
      const r = this.s.byGid.get(appId, kind, gid) as Row | undefined;
      return r ? [groupFrom(r)] : [];
    });
  }

  listGroups(appId: number, kind: GroupKind, beforeId: number | null, limit: number | null): GroupRow[] {
    const rows = limit === null ? this.s.all.all(appId, kind) : this.s.page.all(appId, kind, beforeId ?? Number.MAX_SAFE_INTEGER, limit);
    return (rows as Row[]).map(groupFrom);
  }

  updateGroup(id: number, patch: GroupPatch): GroupRow {
    const cols: Record<keyof GroupPatch, string> = {
      name: 'name', description: 'description', public: 'public', membersOnly: 'members_only',
      allowInvites: 'allow_invites', maxUsers: 'max_users', modified: 'modified',
    };
    const sets: string[] = [];
    const params: Record<string, string | number> = { id };
    for (const [k, v] of Object.entries(patch) as [keyof GroupPatch, string | number | boolean | undefined][]) {
      if (v === undefined) continue;
      sets.push(`${cols[k]} = @${k}`);
      params[k] = typeof v === 'boolean' ? +v : v;
    }
    this.db.prepare(`UPDATE chat_groups SET ${sets.join(', ')} WHERE id = @id`).run(params);
    return this.get(id);
  }

  setGroupOwner(id: number, userId: number, modified: number): GroupRow {
    return this.db.transaction(() => {
      const old = this.get(id);
      this.s.removeMember.run(id, userId);
      this.s.addMember.run(id, old.ownerId, modified);
      this.s.setOwner.run(userId, modified, id);
      return this.get(id);
    })();
  }

  deleteGroups(ids: number[]): void {
    this.db.transaction(() => {
      for (const id of ids) this.s.delete.run(id);
    })();
  }

  deleteGroupsOwnedBy(userIds: number[]): number {
    return this.db.transaction(() => userIds.reduce((n, u) => n + this.s.deleteOwned.run(u).changes, 0))();
  }

  groupMembers(id: number): GroupMember[] {
    const g = this.get(id);
    return [{ userId: g.ownerId, username: g.owner, owner: true }, ...(this.s.members.all(id) as Row[]).map(memberFrom(false))];
  }

  addGroupMembers(id: number, userIds: number[], joined: number, maxJoined: number): JoinRefusal | null {
    return this.db.transaction((): JoinRefusal | null => {
      const g = this.get(id);
      const fresh = [...new Set(userIds)].filter((u) => u !== g.ownerId && this.s.isMember.get(id, u) === undefined);
      if (g.memberCount + fresh.length > g.maxUsers) return { refused: 'full' };
      const refusal = this.overQuota(g.kind, fresh, maxJoined);
      if (refusal) return refusal;
      for (const u of fresh) this.s.addMember.run(id, u, joined);
      return null;
    })();
  }

  removeGroupMembers(id: number, userIds: number[]): void {
    this.db.transaction(() => {
      for (const u of userIds) this.s.removeMember.run(id, u);
    })();
  }

  groupsOfUser(appId: number, kind: GroupKind, userId: number): GroupRow[] {
    return (this.s.ofUser.all({ appId, kind, userId }) as Row[]).map(groupFrom);
  }

  groupBlocks(id: number): GroupMember[] {
    return (this.s.blocks.all(id) as Row[]).map(memberFrom(false));
  }

  blockGroupUsers(id: number, userIds: number[], created: number): void {
    this.db.transaction(() => {
      for (const u of userIds) {
        this.s.removeMember.run(id, u);
        this.s.addBlock.run(id, u, created);
      }
    })();
  }

  unblockGroupUsers(id: number, userIds: number[]): void {
    this.db.transaction(() => {
      for (const u of userIds) this.s.removeBlock.run(id, u);
    })();
  }
}
