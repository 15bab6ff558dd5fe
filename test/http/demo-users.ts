import assert from 'node:assert/strict';
import { Api, demoToken, req, startTestServer, type Res, type TestServer } from '../helpers.js';

/** A test server whose demo app holds the given IM users, each with the password `pw-<name>`. */
export interface DemoUsers {
  s: TestServer;
  /** The demo app's admin (client credentials) token. */
  admin: Api;
  /** No token at all. */
  anon: Api;
  appUuid: string;
  appId: number;
  /** The registered entity of every user, by username. */
  users: Map<string, Record<string, unknown>>;
  /** The password grant of `name` (password `pw-<name>`), in the demo app unless told. */
  login(name: string, org?: string, app?: string): Promise<Res>;
  /** A client with the IM user token of `name`. */
  userApi(name: string, org?: string, app?: string): Promise<Api>;
}

/** Starts a server and registers `names` in its demo app. */
export async function startDemoUsers(names: string[]): Promise<DemoUsers> {
  const s = await startTestServer();
  const admin = new Api(s.url, await demoToken(s));
  const app = (await s.cv.services.store.getApp('demo', 'chat'))!;
  const r = await admin.post('/demo/chat/users', names.map((username) => ({ username, password: `pw-${username}` })));
  assert.equal(r.status, 200, r.text);
  const users = new Map<string, Record<string, unknown>>();
  for (const e of r.body.entities) users.set(e.username, e);
  const login = (name: string, org = 'demo', appName = 'chat') =>
    req(`${s.url}/${org}/${appName}/token`, 'POST', { grant_type: 'password', username: name, password: `pw-${name}` });
  return {
    s, admin, anon: new Api(s.url), appUuid: app.uuid, appId: app.id, users, login,
    async userApi(name, org, appName) {
      const t = await login(name, org, appName);
      assert.equal(t.status, 200, t.text);
      return new Api(s.url, t.body.access_token);
    },
  };
}
