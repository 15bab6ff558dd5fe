import type pg from 'pg';
import { isUniqueViolation, withTransaction, type Queryable } from './postgres-transaction.js';
import {
  DuplicateError,
  type GroupKind, type GroupMember, type GroupPatch, type GroupRow, type JoinRefusal, type NewGroup,
} from '../store.js';
import { GROUP_SELECT, groupFrom, memberFrom, type Row } from '../rows.js';


const PATCH_COLUMNS: Record<keyof GroupPatch, string> = {
  name: 'name', description: 'description', public: 'public', membersOnly: 'members_only',
  allowInvites: 'allow_invites', maxUsers: 'max_users', modified: 'modified',
};

/**
 * Chat groups and chat rooms of the PostgreSQL store. PostgreSQL runs transactions side by side,
 * so a membership change first locks what its limits are about: the group row (maxUsers) and the
 * users' rows (maxJoined), always group first and users in id order, so two changes never wait on
 * each other in a circle. `FOR NO KEY UPDATE` leaves foreign-key checks of other writers free.
 */
export class PostgresGroups {
  constructor(private readonly pool: pg.Pool) {}

  private async get(db: Queryable, id: number): Promise<GroupRow> {
    const r = await db.query(`${GROUP_SELECT} WHERE g.id = $1`, [id]);
    if (r.rows.length === 0) throw new Error(`no group with row id ${id}`);
    return groupFrom(r.rows[0]!);
  }

  private async lockGroup(c: pg.PoolClient, id: number): Promise<void> {
    const r = await c.query('SELECT id FROM chat_groups WHERE id = $1 FOR NO KEY UPDATE', [id]);
    if (r.rows.length === 0) throw new Error(`no group with row id ${id}`);
  }

  private async lockUsers(c: pg.PoolClient, userIds: number[]): Promise<void> {
    await c.query('SELECT id FROM users WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE', [userIds]);
  }

  /** The first user (in the order given) that would pass maxJoined groups of the kind by joining one more. */
  private async overQuota(c: pg.PoolClient, kind: GroupKind, userIds: number[], maxJoined: number): Promise<JoinRefusal | null> {
    if (userIds.length === 0) return null;
    const r = await c.query(
      `SELECT u.id,
         (SELECT count(*) FROM group_members m JOIN chat_groups g ON g.id = m.group_id WHERE m.user_id = u.id AND g.kind = $2)
         + (SELECT count(*) FROM chat_groups g WHERE g.owner_id = u.id AND g.kind = $2) AS joined
       FROM unnest($1::bigint[]) AS u(id)`,
      [userIds, kind],
    );
    const joined = new Map(r.rows.map((row) => [Number(row.id), Number(row.joined)]));
    const userId = userIds.find((u) => (joined.get(u) ?? 0) >= maxJoined);
    return userId === undefined ? null : { refused: 'too_many', userId };
  }

  /** Inserts member rows in the order given (their ids keep the join order); existing ones stay. */
  private async insertMembers(c: pg.PoolClient, table: 'group_members' | 'group_blocks', id: number, userIds: number[], at: number): Promise<void> {
    if (userIds.length === 0) return;
    const col = table === 'group_members' ? 'joined' : 'created';
    await c.query(
      `INSERT INTO ${table} (group_id, user_id, ${col})
       SELECT $1, u.id, $3 FROM unnest($2::bigint[]) WITH ORDINALITY AS u(id, ord) ORDER BY u.ord
       ON CONFLICT (group_id, user_id) DO NOTHING`,
      [id, userIds, at],
    );
  }

  async createGroup(appId: number, g: NewGroup, maxJoined: number): Promise<GroupRow | JoinRefusal> {
    if (g.memberIds.length + 1 > g.maxUsers) return { refused: 'full' };
    return withTransaction(this.pool, async (c): Promise<GroupRow | JoinRefusal> => {
      const users = [g.ownerId, ...g.memberIds];
      await this.lockUsers(c, users);
      const refusal = await this.overQuota(c, g.kind, users, maxJoined);
      if (refusal) return refusal;
      let id: number;
      try {
        const r = await c.query(
          `INSERT INTO chat_groups (app_id, kind, gid, name, description, public, members_only, allow_invites, max_users, owner_id, created, modified)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id`,
          [appId, g.kind, g.groupId, g.name, g.description, g.public, g.membersOnly, g.allowInvites, g.maxUsers, g.ownerId, g.created],
        );
        id = Number(r.rows[0]!.id);
      } catch (e) {
        throw isUniqueViolation(e) ? new DuplicateError(g.groupId) : e;
      }
      await this.insertMembers(c, 'group_members', id, g.memberIds, g.created);
      return this.get(c, id);
    });
  }

  async getGroups(appId: number, kind: GroupKind, groupIds: string[]): Promise<GroupRow[]> {
    if (groupIds.length === 0) return [];
    const r = await this.pool.query(`${GROUP_SELECT} WHERE g.app_id = $1 AND g.kind = $2 AND g.gid = ANY($3::text[])`, [appId, kind, groupIds]);
    const byGid = new Map(r.rows.map((row: Row) => [String(row.gid), groupFrom(row)]));
    return groupIds.flatMap((gid) => {
      const found = byGid.get(gid);
      return found ? [found] : [];
    });
  }

  async listGroups(appId: number, kind: GroupKind, beforeId: number | null, limit: number | null): Promise<GroupRow[]> {
    const r = limit === null
      ? await this.pool.query(`${GROUP_SELECT} WHERE g.app_id = $1 AND g.kind = $2 ORDER BY g.id DESC`, [appId, kind])
      : await this.pool.query(`${GROUP_SELECT} WHERE g.app_id = $1 AND g.kind = $2 AND g.id < $3 ORDER BY g.id DESC LIMIT $4`, [
          appId, kind, beforeId ?? Number.MAX_SAFE_INTEGER, limit,
        ]);
    return r.rows.map(groupFrom);
  }

  async updateGroup(id: number, patch: GroupPatch): Promise<GroupRow> {
    const sets: string[] = [];
    const params: unknown[] = [id];
    for (const [k, v] of Object.entries(patch) as [keyof GroupPatch, string | number | boolean | undefined][]) {
      if (v === undefined) continue;
      params.push(v);
      sets.push(`${PATCH_COLUMNS[k]} = $${params.length}`);
    }
    await this.pool.query(`UPDATE chat_groups SET ${sets.join(', ')} WHERE id = $1`, params);
    return this.get(this.pool, id);
  }

  async setGroupOwner(id: number, userId: number, modified: number): Promise<GroupRow> {
    return withTransaction(this.pool, async (c) => {
      // Locked so that two owner changes at once cannot both demote the same old owner.
      await this.lockGroup(c, id);
      const old = await this.get(c, id);
      await c.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = $2', [id, userId]);
      await this.insertMembers(c, 'group_members', id, [old.ownerId], modified);
      await c.query('UPDATE chat_groups SET owner_id = $1, modified = $2 WHERE id = $3', [userId, modified, id]);
      return this.get(c, id);
    });
  }

  async deleteGroups(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query('DELETE FROM chat_groups WHERE id = ANY($1::bigint[])', [ids]);
  }

  async deleteGroupsOwnedBy(userIds: number[]): Promise<number> {
    if (userIds.length === 0) return 0;
    const r = await this.pool.query('DELETE FROM chat_groups WHERE owner_id = ANY($1::bigint[])', [userIds]);
    return r.rowCount ?? 0;
  }

  async groupMembers(id: number): Promise<GroupMember[]> {
    // One statement, one snapshot: the owner and the member rows agree with each other.
    const r = await this.pool.query(
      `SELECT g.owner_id AS user_id, u.username, true AS owner, 0 AS part, 0::bigint AS rid
         FROM chat_groups g JOIN users u ON u.id = g.owner_id WHERE g.id = $1
       UNION ALL
       SELECT m.user_id, u.username, false, 1, m.id
         FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1
       ORDER BY part, rid`,
      [id],
    );
    if (r.rows.length === 0 || r.rows[0]!.owner !== true) throw new Error(`no group with row id ${id}`);
    return r.rows.map((row: Row) => memberFrom(row.owner === true)(row));
  }

  async addGroupMembers(id: number, userIds: number[], joined: number, maxJoined: number): Promise<JoinRefusal | null> {
    return withTransaction(this.pool, async (c): Promise<JoinRefusal | null> => {
      await this.lockGroup(c, id);
      const g = await this.get(c, id);
      const candidates = [...new Set(userIds)].filter((u) => u !== g.ownerId);
      const present = await c.query('SELECT user_id FROM group_members WHERE group_id = $1 AND user_id = ANY($2::bigint[])', [id, candidates]);
      const members = new Set(present.rows.map((row: Row) => Number(row.user_id)));
      const fresh = candidates.filter((u) => !members.has(u));
      if (g.memberCount + fresh.length > g.maxUsers) return { refused: 'full' };
      await this.lockUsers(c, fresh);
      const refusal = await this.overQuota(c, g.kind, fresh, maxJoined);
      if (refusal) return refusal;
      await this.insertMembers(c, 'group_members', id, fresh, joined);
      return null;
    });
  }

  async removeGroupMembers(id: number, userIds: number[]): Promise<void> {
    if (userIds.length === 0) return;
    await this.pool.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::bigint[])', [id, userIds]);
  }

  async groupsOfUser(appId: number, kind: GroupKind, userId: number): Promise<GroupRow[]> {
    const r = await this.pool.query(
      `${GROUP_SELECT} WHERE g.app_id = $1 AND g.kind = $2
       AND (g.owner_id = $3 OR g.id IN (SELECT group_id FROM group_members WHERE user_id = $3)) ORDER BY g.id`,
      [appId, kind, userId],
    );
    return r.rows.map(groupFrom);
  }

  async groupBlocks(id: number): Promise<GroupMember[]> {
    const r = await this.pool.query(
      'SELECT b.user_id, u.username FROM group_blocks b JOIN users u ON u.id = b.user_id WHERE b.group_id = $1 ORDER BY b.id',
      [id],
    );
    return r.rows.map(memberFrom(false));
  }

  async blockGroupUsers(id: number, userIds: number[], created: number): Promise<void> {
    if (userIds.length === 0) return;
    await withTransaction(this.pool, async (c) => {
      await c.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::bigint[])', [id, userIds]);
      await this.insertMembers(c, 'group_blocks', id, userIds, created);
    });
  }

  async unblockGroupUsers(id: number, userIds: number[]): Promise<void> {
    if (userIds.length === 0) return;
    await this.pool.query('DELETE FROM group_blocks WHERE group_id = $1 AND user_id = ANY($2::bigint[])', [id, userIds]);
  }
}
