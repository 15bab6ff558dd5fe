import { prepare } from '../../src/chatvault.js';
import { loadConfig } from '../../src/config.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { closeServices } from '../../src/services.js';
import type { NewUser } from '../../src/store/store.js';
import { uuidV1 } from '../../src/util/ids.js';
import { ADMIN } from '../harness.js';
import type { UserCredentials } from './load-commands.js';

/** The users' shared password: the REST check logs one of them in with it. */
export const USER_PASSWORD = 'bench-user-pw';
// A day is plenty for a run and still expires, as real tokens do.
const TOKEN_TTL_SECONDS = 86400;

/**
 * `count` users `u0`…`u{count-1}` of the demo app written into a fresh data folder, with a
 * user token each, before the server starts. Registering them through REST would cost one
 * scrypt hash per user (about 47 ms of a core here) and one more per password token — 10,000
 * users would take some 940 CPU-seconds — so they share one hash, and the tokens come from the
 * server's own TokenService with the folder's signing key (the very bytes the password grant
 * returns). The scenario still logs one user in through REST to check the folder.
 */
export async function seedUsers(dataDir: string, count: number): Promise<{ org: string; app: string; users: UserCredentials[] }> {
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', CHATVAULT_ADMIN: `${ADMIN.username}:${ADMIN.password}` });
  const s = await prepare(config);
  try {
    const app = await s.store.getApp('demo', 'chat');
    if (!app) throw new Error('the demo app was not created');
    const hash = await hashPassword(USER_PASSWORD);
    const users: UserCredentials[] = [];
    const CHUNK = 1000;
    for (let i = 0; i < count; i += CHUNK) {
      const now = Date.now();
      const rows: NewUser[] = [];
      for (let k = i; k < Math.min(count, i + CHUNK); k++) rows.push({ uuid: uuidV1(now), username: `u${k}`, passwordHash: hash, properties: {}, created: now });
      for (const row of await s.store.createUsers(app.id, rows)) users.push({ username: row.username, token: s.tokens.issue('user', row.id, row.pwGen, TOKEN_TTL_SECONDS) });
    }
    return { org: app.orgName, app: app.name, users };
  } finally {
    await closeServices(s);
  }
}
