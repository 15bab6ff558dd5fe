import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Api, req, startTestServer, tempDir, type TestServer } from '../helpers.js';
import { openTestStore, storeEnv } from '../store-under-test.js';
import { byId, readJsonl, runCli, seedMessages } from './cli-helpers.js';

let src: TestServer;
let dir: string;
let exported: string;
const N = 2500;

interface Report {
  read: number;
  imported: number;
  skipped_duplicates: number;
  skipped_invalid: number;
  invalid_lines: { file: string; line: number; reason: string }[];
}

async function importFiles(dataDir: string, files: string[], ...extra: string[]): Promise<Report> {
  const r = await runCli(['import', '--data-dir', dataDir, '--org', 'acme', '--app', 'history', ...extra, ...files], storeEnv(dataDir));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Report;
}

/** Every stored record of acme/history in a data folder's store, in storage order. */
async function stored(dataDir: string): Promise<Record<string, unknown>[]> {
  const store = await openTestStore(dataDir);
  try {
    const app = (await store.getApp('acme', 'history'))!;
    const rows = await store.messagesAfter(app.id, 0n, 1_000_000);
    return rows.map((r) => JSON.parse(r.entity.toString('utf8')) as Record<string, unknown>);
  } finally {
    await store.close();
  }
}

before(async () => {
  src = await startTestServer();
  const app = (await src.cv.services.store.getApp('demo', 'chat'))!;
  await seedMessages(src.cv.services.store, app, N, 8_000_000_000);
  dir = tempDir('cv-import-');
  exported = path.join(dir, 'demo.jsonl');
  const r = await runCli([
    'export', '--url', src.url, '--org', 'demo', '--app', 'chat', '--client-id', src.demo.clientId, '--client-secret', src.demo.clientSecret,
    '--out', exported,
  ]);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await src.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('chatvault import', () => {
  test('an export imported into a fresh app round-trips: msg_ids, timestamps, payloads, uuids', async () => {
    const data = path.join(dir, 'fresh');
    const rep = await importFiles(data, [exported], '--create-app', '--batch-size', '1000');
    assert.deepEqual({ ...rep, invalid_lines: rep.invalid_lines.length }, {
      ...rep, read: N, imported: N, skipped_duplicates: 0, skipped_invalid: 0, invalid_lines: 0,
    });
    const original = readJsonl(exported);
    const got = await stored(data);
    assert.equal(got.length, N);
    // Imported in file order, so the stored records are the exported ones, byte for byte as JSON.
    assert.deepEqual(got, original);
  });

  test('importing the same files twice stores each message once', async () => {
    const data = path.join(dir, 'twice');
    const gz = path.join(dir, 'demo.jsonl.gz');
    fs.writeFileSync(gz, gzipSync(fs.readFileSync(exported)));
    const first = await importFiles(data, [exported], '--create-app');
    assert.equal(first.imported, N);
    // The same messages again, plain and gzip, and twice within one file.
    const second = await importFiles(data, [gz, exported, gz]);
    assert.equal(second.read, 3 * N);
    assert.equal(second.imported, 0);
    assert.equal(second.skipped_duplicates, 3 * N);
    const got = await stored(data);
    assert.equal(got.length, N);
    assert.equal(new Set(got.map((r) => r.msg_id)).size, N);
  });

  test('an Easemob hourly archive (.gz of §5.2 records) imports and is served by the API', async () => {
    const data = path.join(dir, 'easemob');
    const records = [
      {
        msg_id: '5I02W-16-8278a', timestamp: 1403099033211, direction: 'outgoing', to: '1402541206787', from: 'zw123', chat_type: 'chat',
        payload: { bodies: [{ type: 'txt', msg: 'hi' }], ext: { key1: 'value1' }, from: 'zw123', to: '1402541206787' },
      },
      {
        msg_id: '82461076515455540', timestamp: '1403099034000', direction: 'incoming', to: '1411527886490154', from: 'jliu', chat_type: 'groupchat',
        payload: { bodies: [{ type: 'img', url: 'https://a1.easemob.com/o/a/chatfiles/8ef4', filename: '1.png', secret: 'jvRl' }], from: 'jliu', to: '1411527886490154' },
      },
      {
        msg_id: '1029457500870543736', timestamp: 1403099035000, direction: 'outgoing', to: 'room1', from: 'a', chat_type: 'chatroom',
        payload: { bodies: [{ type: 'loc', addr: '西城区西便门桥', lat: 39.9053, lng: 116.36302 }], from: 'a', to: 'room1' },
      },
    ];
    const archive = path.join(dir, '2014061821.gz');
    fs.writeFileSync(archive, gzipSync(records.map((r) => JSON.stringify(r)).join('\n') + '\n'));
    const rep = await importFiles(data, [archive], '--create-app');
    assert.equal(rep.imported, 3);
    assert.equal(rep.skipped_invalid, 0);

    const srv = await startTestServer({}, data);
    try {
      const app = (await srv.cv.services.store.getApp('acme', 'history'))!;
      const tok = await req(`${srv.url}/acme/history/token`, 'POST', { grant_type: 'client_credentials', client_id: app.clientId, client_secret: app.clientSecret });
      const api = new Api(srv.url, tok.body.access_token as string);
      const page = await api.get('/acme/history/chatmessages?limit=10');
      const got = byId(page.body.entities as Record<string, unknown>[]);
      assert.equal(got.size, 3);
      for (const r of records) {
        const e = got.get(r.msg_id)!;
        assert.equal(e.timestamp, Number(r.timestamp));
        assert.equal(e.from, r.from);
        assert.equal(e.to, r.to);
        assert.equal(e.chat_type, r.chat_type);
        const { from: _f, to: _t, ...payload } = r.payload;
        assert.deepEqual(e.payload, payload);
      }
      // The stored copies are indexed like sent ones: ql finds them by type and by position.
      const loc = await api.get(`/acme/history/chatmessages?ql=${encodeURIComponent("select * where location within 1000 of 39.9053, 116.36302")}`);
      assert.deepEqual(loc.body.entities.map((e: { msg_id: string }) => e.msg_id), ['1029457500870543736']);
    } finally {
      await srv.close();
    }
  });

  test('broken lines are reported with their line numbers and never stop the import', async () => {
    const data = path.join(dir, 'broken');
    const good = readJsonl(exported).slice(0, 5).map((r) => JSON.stringify(r));
    const file = path.join(dir, 'broken.jsonl');
    fs.writeFileSync(file, [
      good[0], good[1].slice(0, 40), '', good[2], '{"msg_id":"no-payload","timestamp":1}', '[1,2]',
      '{"msg_id":"bad-type","timestamp":1,"from":"a","to":"b","chat_type":"fax","payload":{"bodies":[{"type":"txt","msg":"x"}]}}',
      good[3], '{"type":"export_end","complete":true,"count":5,"watermark":"x"}',
    ].join('\n') + '\n');
    // A gzip cut off in the middle: what comes before the cut is imported.
    const cut = path.join(dir, 'cut.jsonl.gz');
    const whole = gzipSync(Buffer.from(readJsonl(exported).slice(100, 600).map((r) => JSON.stringify(r) + '\n').join('')));
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const rep = await importFiles(data, [file, cut], '--create-app');
    assert.deepEqual(rep.invalid_lines.slice(0, 4), [
      { file, line: 2, reason: 'not JSON' },
      { file, line: 5, reason: 'payload is missing or not an object' },
      { file, line: 6, reason: 'not a JSON object' },
      { file, line: 7, reason: 'chat_type must be chat, groupchat or chatroom, not "fax"' },
    ]);
    assert.equal(rep.invalid_lines[4]!.file, cut);
    assert.match(rep.invalid_lines[4]!.reason, /file unreadable/);
    const fromCut = rep.imported - 3;
    assert.ok(fromCut > 0 && fromCut < 500, `part of the cut file was imported (${fromCut})`);
    assert.equal(rep.read, rep.imported + rep.skipped_invalid);
    const got = await stored(data);
    assert.deepEqual(got.slice(0, 3).map((r) => r.msg_id), [0, 2, 3].map((i) => JSON.parse(good[i]!).msg_id));
  });

  test('a missing app or file is exit 2 with a one-line message', async () => {
    const fresh = path.join(dir, 'fresh');
    let r = await runCli(['import', '--data-dir', fresh, '--org', 'acme', '--app', 'nope', exported], storeEnv(fresh));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no app acme\/nope.*--create-app/);
    r = await runCli(['import', '--data-dir', fresh, '--org', 'acme', '--app', 'history', path.join(dir, 'missing.gz')], storeEnv(fresh));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read/);
  });
});
