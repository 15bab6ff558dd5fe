import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { Api, demoToken, startTestServer, type TestServer } from '../helpers.js';

/*
 * The client in a real browser: Debian's Chromium loads chatvault/client as ES modules, two users
 * log in with their passwords over the browser's own WebSocket and chat, and the page reports
 * what arrived. Without /usr/bin/chromium this skips with a notice, except where
 * CHATVAULT_REQUIRE_SERVICES=1 (CI installs it), where that is a failure.
 */

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');
// The page and the modules come from a small web server of the test's own on 127.0.0.1: the app's
// site, another origin than chatvault's. (Served from loopback, because Chromium's local-network
// checks refuse a page from a public address, or an intercepted one, a socket to 127.0.0.1.)
function serveApp(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    if (p === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>chat</title>');
    if (p === '/favicon.ico') return res.writeHead(204).end();
    const file = path.join(CLIENT_DIR, path.basename(p));
    if (!p.startsWith('/client/') || !fs.existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const missing = !fs.existsSync(CHROMIUM);
if (missing && process.env.CHATVAULT_REQUIRE_SERVICES === '1') throw new Error(`${CHROMIUM} is missing; CI installs Debian's chromium package`);
if (missing) process.stdout.write(`!! SKIPPED: the Chromium client test — ${CHROMIUM} not found (apt-get install chromium)\n`);

let s: TestServer;
let browser: Browser;
let site: http.Server;

describe('chatvault/client in Chromium', { skip: missing }, () => {
  before(async () => {
    s = await startTestServer();
    const api = new Api(s.url, await demoToken(s));
    for (const username of ['cara', 'dov']) assert.equal((await api.post('/demo/chat/users', { username, password: `${username}-pw` })).status, 200);
    site = await serveApp();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    site?.close();
    await s?.close();
    if (s) fs.rmSync(s.dataDir, { recursive: true, force: true });
  });

  test('two users chat over the browser\'s WebSocket: acks with msg_ids, pushes as the exported record, a receipt back', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => errors.push(`console: ${m.text()}`));
    const addr = site.address() as { port: number };
    await page.goto(`http://127.0.0.1:${addr.port}/`);
    const wsUrl = `ws://127.0.0.1:${s.cv.port}/ws`;
    const result = await page.evaluate(({ url, entry }) => {
      let step = 'start';
      const run = async () => {
      step = 'import';
      const mod = (await import(entry)) as typeof import('chatvault/client');
      const cara = new mod.ChatClient({ url });
      const dov = new mod.ChatClient({ url });
      const got: { from: string; text: unknown; msgId: string }[] = [];
      const receipts: string[] = [];
      const arrived = new Promise<void>((resolve) => {
        dov.on('message', (m) => {
          got.push({ from: m.from, text: m.payload.bodies[0]?.msg, msgId: m.msg_id });
          if (got.length === 2) resolve();
        });
      });
      const receipted = new Promise<void>((resolve) => cara.on('receipt', (r) => {
        if (r.receipt !== 'read') return;
        receipts.push(r.msg_id);
        resolve();
      }));
      step = 'login';
      await cara.login({ appkey: 'demo#chat', username: 'cara', password: 'cara-pw' });
      await dov.login({ appkey: 'demo#chat', username: 'dov', password: 'dov-pw' });
      step = 'send';
      const a1 = await cara.sendText('dov', 'hello from Chromium');
      const a2 = await cara.sendText('dov', '你好');
      step = 'receive';
      await arrived;
      dov.markRead(got[0]!.msgId);
      step = 'receipt';
      await receipted;
      cara.close();
      dov.close();
      return { acks: [a1.msg_id, a2.msg_id], got, receipts, userAgent: (globalThis as unknown as { navigator: { userAgent: string } }).navigator.userAgent };
      };
      // A step that never ends fails the test with its name instead of hanging it.
      return Promise.race([run(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`stuck at ${step}`)), 20_000))]);
    }, { url: wsUrl, entry: '/client/index.js' }).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${errors.join('\n')}`);
    });
    assert.deepEqual(errors, []);
    assert.match(result.userAgent, /Chrome/);
    assert.deepEqual(result.got.map((g) => [g.from, g.text]), [['cara', 'hello from Chromium'], ['cara', '你好']]);
    assert.deepEqual(result.got.map((g) => g.msgId), result.acks, 'the pushes carry the acked msg_ids');
    assert.deepEqual(result.receipts, [result.acks[0]], 'the read receipt for the first message');
    const r = await new Api(s.url, await demoToken(s)).get(`/demo/chat/chatmessages?ql=${encodeURIComponent(`select * where msg_id = '${result.acks[1]}'`)}`);
    assert.equal(r.body.entities[0].payload.bodies[0].msg, '你好');
    await page.close();
  });
});
