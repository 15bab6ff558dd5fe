import { errors } from '../errors.js';
import type { AppRow, Store, UserRow } from '../store/store.js';
import type { UserService } from './users.js';

/** The most users one `POST /blocks/users` may name. */
export const MAX_BLOCKS_PER_REQUEST = 100;

/**
 * Friends and block lists of IM users (spec §2.2). Friendship is mutual and needs no consent;
 * adding a friend or blocking a user twice changes nothing and answers as the first time did.
 */
export class ContactService {
  /**
   * Hears each friendship made (`both`) or ended (`remove`) once the store has it, whoever asked
   * (REST or a socket), so that the users' connected clients can update their contact lists.
   * Must not throw; it is not awaited.
   */
  onChange: (app: AppRow, a: UserRow, b: UserRow, subscription: 'both' | 'remove') => void = () => {};

  constructor(private readonly store: Store, private readonly users: UserService) {}

  /** Makes `owner` and `friend` friends of each other; resolves with the friend. */
  async add(app: AppRow, owner: string, friend: string): Promise<UserRow> {
    const [o, f] = await this.pair(app, owner, friend, 'a user cannot add itself as a contact');
    await this.store.addContact(o.id, f.id, Date.now());
    this.onChange(app, o, f, 'both');
    return f;
  }

  /** Ends the friendship in both directions; resolves with the former friend. */
  async remove(app: AppRow, owner: string, friend: string): Promise<UserRow> {
    const [o, f] = await this.pair(app, owner, friend, 'a user cannot remove itself as a contact');
    await this.store.removeContact(o.id, f.id);
    this.onChange(app, o, f, 'remove');
    return f;
  }

  /** Usernames of the owner's friends. */
  async list(app: AppRow, owner: string): Promise<string[]> {
    return this.store.listContacts((await this.users.get(app, owner)).id);
  }

  /** Usernames on the owner's block list. */
  async blocks(app: AppRow, owner: string): Promise<string[]> {
    return this.store.listBlocks((await this.users.get(app, owner)).id);
  }

  /** Blocks every user of `{"usernames": [...]}` (all or none); resolves with their usernames. */
  async block(app: AppRow, owner: string, body: unknown): Promise<string[]> {
    const names = parseUsernames(body);
    const o = await this.users.get(app, owner);
    const targets = new Map<number, UserRow>();
    for (const name of names) {
      const u = await this.users.get(app, name);
      if (u.id === o.id) throw errors.illegalArgument('a user cannot block itself');
      targets.set(u.id, u);
    }
    await this.store.addBlocks(o.id, [...targets.keys()], Date.now());
    return [...targets.values()].map((u) => u.username);
  }

  /** Takes `blocked` off the owner's block list; resolves with that user. */
  async unblock(app: AppRow, owner: string, blocked: string): Promise<UserRow> {
    const [o, b] = await this.pair(app, owner, blocked, 'a user cannot unblock itself');
    await this.store.removeBlock(o.id, b.id);
    return b;
  }

  private async pair(app: AppRow, owner: string, other: string, selfError: string): Promise<[UserRow, UserRow]> {
    const o = await this.users.get(app, owner);
    const u = await this.users.get(app, other);
    if (u.id === o.id) throw errors.illegalArgument(selfError);
    return [o, u];
  }
}

/** `{"usernames": ["a", "b"]}` (a single string is taken as a list of one). */
function parseUsernames(body: unknown): string[] {
  const raw = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>).usernames : undefined;
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((n): n is string => typeof n === 'string' && n !== '')) {
    throw errors.illegalArgument('usernames must be a non-empty array of usernames');
  }
  if (list.length > MAX_BLOCKS_PER_REQUEST) throw errors.illegalArgument(`at most ${MAX_BLOCKS_PER_REQUEST} usernames can be blocked in one request`);
  return list;
}
