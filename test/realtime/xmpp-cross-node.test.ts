import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { REDIS_TEST_URL, redisSkip } from '../bus/redis-test-env.js';
import { Api, demoToken, startTestServer, tempDir, type TestServer } from '../helpers.js';
import { PG_SCHEMA_PREFIX, PG_TEST_URL, pgSkip, withSchema } from '../store-under-test.js';
import { ackMid, chatStanza, xmppLogin } from './xmpp-client.js';

/** Two nodes on one PostgreSQL schema and one Redis, an XMPP client on each. */

const skip = (await pgSkip()) || (await redisSkip());
const ENV = {
  DATABASE_URL: withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}xn_${randomBytes(3).toString('hex')}`),
  REDIS_URL: REDIS_TEST_URL, DATABASE_POOL_MAX: '4',
};
const J = (u: string): string => `demo#chat_${u}@easemob.com`;

let a: TestServer;
let b: TestServer;
let api: Api;

describe('XMPP across two nodes', { skip }, () => {
  before(async () => {
    a = await startTestServer(ENV, tempDir('cv-xn-a-'));
    b = await startTestServer(ENV, tempDir('cv-xn-b-'));
    api = new Api(a.url, await demoToken(a));
    for (const u of ['nan', 'nob']) assert.equal((await api.post('/demo/chat/users', { username: u, password: `${u}-pw` })).status, 200);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  test('replay, receipts, roster pushes and presence reach the user on the other node', async () => {
    // Sent while nob is offline: replayed by node B from the shared store.
    const nan = await xmppLogin(a.cv.port, 'nan');
    nan.send(chatStanza('nob', 'x1', 'before you came'));
    const mid = ackMid(await nan.expect(/urn:xmpp:receipts/));
    const nob = await xmppLogin(b.cv.port, 'nob');
    assert.match(await nob.expect(new RegExp(`id="${mid}"`)), /urn:xmpp:delay/);

    nob.send(`<message to="${J('nan')}" id="r1"><body>${mid}</body><acked xmlns="urn:xmpp:receipts" id="${mid}"/></message>`);
    assert.match(await nan.expect(/<acked /, 5000), new RegExp(`from="${J('nob')}".*id="${mid}"`));

    // A REST change on node A: both users see it, wherever they are connected.
    assert.equal((await api.post('/demo/chat/users/nan/contacts/users/nob')).status, 200);
    assert.match(await nob.expect(/jabber:iq:roster/, 5000), new RegExp(`<item jid="${J('nan')}" name="nan" subscription="both"/>`));
    assert.match(await nan.expect(/jabber:iq:roster/, 5000), new RegExp(`<item jid="${J('nob')}" name="nob" subscription="both"/>`));

    // Now friends: nan's next presence and its leaving reach node B.
    nan.send('<presence><status>back</status></presence>');
    assert.match(await nob.expect(/<status>back/, 5000), new RegExp(`from="${J('nan')}"`));
    await nan.close();
    assert.match(await nob.expect(/type="unavailable"/, 5000), new RegExp(`from="${J('nan')}"`));
    await nob.close();
  });
});
