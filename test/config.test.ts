import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { ConfigError, loadConfig, settingsMarkdown } from '../src/config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('defaults: port 5080 on 127.0.0.1, data in ./data, 60-day tokens', () => {
  const c = loadConfig({});
  assert.equal(c.port, 5080);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.dataDir, path.resolve('./data'));
  assert.equal(c.publicUrl, 'http://127.0.0.1:5080');
  assert.equal(c.tokenTtlSeconds, 5184000);
  assert.equal(c.admin, null);
});

test('flags override the environment', () => {
  const c = loadConfig({ PORT: '6000', PUBLIC_URL: 'https://chat.example.com/' }, { PORT: '7000' });
  assert.equal(c.port, 7000);
  assert.equal(c.publicUrl, 'https://chat.example.com');
});

test('CHATVAULT_ADMIN is username:password (the password may hold colons)', () => {
  assert.deepEqual(loadConfig({ CHATVAULT_ADMIN: 'root:a:b' }).admin, { username: 'root', password: 'a:b' });
});

for (const [env, value] of [
  ['PORT', 'abc'], ['PORT', '70000'], ['LOG_LEVEL', 'loud'], ['PUBLIC_URL', 'ftp://x'], ['PUBLIC_URL', 'not a url'],
  ['CHATVAULT_ADMIN', 'nopassword'], ['CHATVAULT_ADMIN', ':x'], ['TOKEN_TTL', '-5'], ['CHATVAULT_DEMO', 'maybe'], ['DATA_DIR', ' '],
] as const) {
  test(`invalid ${env}=${value} is refused with a message naming the setting`, () => {
    assert.throws(() => loadConfig({ [env]: value }), (e: unknown) => e instanceof ConfigError && e.setting === env && e.message.includes(env) && !e.message.includes('\n'));
  });
}

test('the README configuration table is the one the code generates', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- settings:begin -->\n([\s\S]*?)\n<!-- settings:end -->/.exec(readme);
  assert.ok(m, 'README has the settings markers');
  assert.equal(m[1], settingsMarkdown(), 'run `chatvault config --markdown` and paste the table into the README');
});
