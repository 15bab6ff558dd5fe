import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildMessage } from '../../src/domain/messages.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { runCli } from '../cli/cli-helpers.js';
import { Api, demoToken, startTestServer, tempDir, type TestServer } from '../helpers.js';
import { download, multipartBody, upload } from '../http/chatfile-helpers.js';
import { PG_SCHEMA_PREFIX, PG_TEST_URL, pgSkip, withSchema } from '../store-under-test.js';

/**
 * `chatvault migrate --from ./data --to postgres://...` on a populated SQLite deployment: every
 * export, token, cursor and file is the same before and after, and running it again is safe.
 */

const skip = await pgSkip();
const DB = withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}migrate_${randomBytes(3).toString('hex')}`);
const QLS = [
  '',
  'select * order by timestamp desc',
  "select * where from = 'alice'",
  "select * where payload.bodies.msg contains '你好'",
  'select * where location within 5000 of 39.95, 116.35',
  "select * where chat_type = 'groupchat' and timestamp > 1767225600500 order by timestamp",
  "select * where payload.ext.tag = 'x7'",
];

const dataDir = tempDir('cv-migrate-src-');
let token: string;
let fileUuid: string;
let fileBytes: Buffer;
let before_: Map<string, string[]>;
let cursorBefore: string;

async function walkAll(s: TestServer, tok: string): Promise<Map<string, string[]>> {
  const api = new Api(s.url, tok);
  const out = new Map<string, string[]>();
  for (const ql of QLS) {
    const lines: string[] = [];
    let cursor = '';
    for (;;) {
      const r = await api.get(`/demo/chat/chatmessages?limit=250&ql=${encodeURIComponent(ql)}${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, r.text);
      lines.push(...(r.body.entities as unknown[]).map((e) => JSON.stringify(e)));
      if (!r.body.cursor) break;
      cursor = r.body.cursor;
    }
    out.set(ql, lines);
  }
  const stream = await fetch(`${s.url}/demo/chat/chatmessages/export`, { headers: { authorization: `Bearer ${tok}` } });
  out.set('stream', (await stream.text()).trim().split('\n').slice(0, -1));
  return out;
}

function seed(appId: number, from: number, n: number) {
  return Array.from({ length: n }, (_v, k) => {
    const i = from + k;
    const body = i % 10 === 0
      ? { type: 'loc', lat: 39.9 + (i % 7) * 0.02, lng: 116.3 + (i % 5) * 0.02, addr: '西城区' }
      : { type: 'txt', msg: i % 3 === 0 ? `你好 world ${i}` : `hello ${i}` };
    return buildMessage(appId, {
      from: ['alice', 'bob', 'carol'][i % 3]!, to: i % 4 === 0 ? '20001' : 'dave', chatType: i % 4 === 0 ? 'groupchat' : 'chat', bodies: [body],
      ext: i % 5 === 0 ? { tag: `x${i % 9}` } : undefined, timestamp: Date.UTC(2026, 0, 1) + i * 97, msgId: `${8_000_000 + i}`,
    });
  });
}

describe('chatvault migrate from SQLite to PostgreSQL', { skip }, () => {
  before(async () => {
    const s = await startTestServer({ DATABASE_URL: '' }, dataDir);
    try {
      token = await demoToken(s);
      const api = new Api(s.url, token);
      for (const u of ['alice', 'bob', 'carol', 'dave']) assert.equal((await api.post('/demo/chat/users', { username: u, password: 'pw', nickname: u.toUpperCase() })).status, 200);
      assert.equal((await api.post('/demo/chat/users/alice/contacts/users/bob')).status, 200);
      const app = (await s.cv.services.store.getApp('demo', 'chat'))!;
      await s.cv.services.store.insertMessages(seed(app.id, 0, 2500));
      fileBytes = randomBytes(300_000);
      const up = await upload(s.url, '/demo/chat', multipartBody([{ name: 'file', filename: 'x.bin', type: 'application/octet-stream', data: fileBytes }]), { authorization: `Bearer ${token}` });
      assert.equal(up.status, 200, up.text);
      fileUuid = (up.body as { entities: { uuid: string }[] }).entities[0]!.uuid;
      before_ = await walkAll(s, token);
      const first = await api.get('/demo/chat/chatmessages?limit=100');
      cursorBefore = first.body.cursor;
    } finally {
      await s.close();
    }
  });

  let target: TestServer | undefined;
  after(async () => {
    await target?.close();
  });

  test('copies everything, verifies it, and the PostgreSQL server answers exactly as the SQLite one did', async () => {
    const r = await runCli(['migrate', '--from', dataDir, '--to', DB, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; tables: { table: string; source: number; target: number; checksum: string }[]; files: { source: number; copied: number } };
    assert.equal(report.ok, true);
    assert.deepEqual(report.tables.find((t) => t.table === 'messages'), { ...report.tables.find((t) => t.table === 'messages'), source: 2500, target: 2500, checksum: 'equal' });
    assert.equal(report.files.copied, 1);
    assert.match(r.stderr, /messages\s+2500 in SQLite,\s+2500 in PostgreSQL/);

    target = await startTestServer({ DATABASE_URL: DB }, tempDir('cv-migrate-dst-'));
    assert.equal(target.cv.services.store.kind, 'postgres');
    const afterMigrate = await walkAll(target, token);
    for (const [k, v] of before_) assert.deepEqual(afterMigrate.get(k), v, `export ${JSON.stringify(k)} is identical`);
    const api = new Api(target.url, token);
    assert.equal((await api.get('/demo/chat/users/alice')).body.entities[0].nickname, 'ALICE', 'the old token works: same signing key');
    assert.deepEqual((await api.get('/demo/chat/users/alice/contacts/users')).body.data, ['bob']);
    const next = await api.get(`/demo/chat/chatmessages?limit=100&cursor=${cursorBefore}`);
    assert.equal(next.status, 200, 'a cursor of the old server goes on');
    assert.deepEqual((next.body.entities as unknown[]).map((e) => JSON.stringify(e)), before_.get('')!.slice(100, 200));
    const d = await download(`${target.url}/demo/chat/chatfiles/${fileUuid}`, { authorization: `Bearer ${token}` });
    assert.equal(d.status, 200);
    assert.ok(d.bytes.equals(fileBytes), 'the chat file came across');
    const sent = await api.post('/demo/chat/messages', { target_type: 'users', target: ['dave'], from: 'alice', msg: { type: 'txt', msg: 'after the move' } });
    assert.equal(sent.status, 200, 'new messages are stored after the copied ones');
    await target.close();
    target = undefined;
  });

  test('a target that served writes since the copy is refused: no two histories get mixed', async () => {
    const r = await runCli(['migrate', '--from', dataDir, '--to', DB, '--no-progress']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nothing copied: the target was written to since the last copy finished \(deliveries: 0 → 1, messages: 2500 → 2501\)/);
  });

  test('copying again into an untouched target brings over only what the source got since', async () => {
    const db2 = withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}migrate2_${randomBytes(3).toString('hex')}`);
    let r = await runCli(['migrate', '--from', dataDir, '--to', db2, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const src = new SqliteStore(path.join(dataDir, 'chatvault.db'));
    await src.open();
    const app = (await src.getApp('demo', 'chat'))!;
    await src.insertMessages(seed(app.id, 2500, 100));
    await src.close();
    r = await runCli(['migrate', '--from', dataDir, '--to', db2, '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; tables: { table: string; source: number; target: number; copied: number; checksum: string }[] };
    const m = report.tables.find((t) => t.table === 'messages')!;
    assert.deepEqual({ copied: m.copied, source: m.source, target: m.target, checksum: m.checksum }, { copied: 100, source: 2600, target: 2600, checksum: 'equal' });
    assert.equal(report.tables.find((t) => t.table === 'users')!.copied, 0);
    assert.equal(report.ok, true);
  });

  test('a database that holds data no copy brought is refused', async () => {
    const db3 = withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}migrate3_${randomBytes(3).toString('hex')}`);
    const s = await startTestServer({ DATABASE_URL: db3 }, tempDir());
    await s.close();
    const r = await runCli(['migrate', '--from', dataDir, '--to', db3, '--no-progress']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nothing copied: the target database already holds data \(orgs: 1/);
  });

  test('without --from/--to it brings the configured store to this version', async () => {
    const dir = tempDir();
    let r = await runCli(['migrate', '--data-dir', dir], { DATABASE_URL: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { store: 'sqlite', where: path.join(dir, 'chatvault.db'), migrated: true });
    const db4 = withSchema(PG_TEST_URL, `${PG_SCHEMA_PREFIX}migrate4_${randomBytes(3).toString('hex')}`);
    r = await runCli(['migrate', '--database-url', db4]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).store, 'postgres');
  });

  test('bad arguments get a clear message', async () => {
    let r = await runCli(['migrate', '--from', dataDir, '--no-progress']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--from and --to go together/);
    r = await runCli(['migrate', '--from', tempDir(), '--to', DB, '--no-progress']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no chatvault data/);
    r = await runCli(['migrate', '--from', dataDir, '--to', 'mysql://x', '--no-progress']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /DATABASE_URL/);
  });
});
