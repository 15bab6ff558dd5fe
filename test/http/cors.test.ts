import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startTestServer, type TestServer } from '../helpers.js';

/** Browser SDKs call the REST API cross-origin: preflights and CORS headers on every answer. */

describe('CORS, any origin (the default)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.close());

  test('a preflight of any path is answered 204 with the methods and the headers asked for', async () => {
    const r = await fetch(`${s.url}/demo/chat/chatfiles`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, share-secret, restrict-access' },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.equal(r.headers.get('access-control-allow-headers'), 'authorization, share-secret, restrict-access');
    assert.equal(r.headers.get('access-control-allow-credentials'), null, 'never credentials: auth is by bearer token');
  });

  test('answers, errors included, carry the CORS headers; a JSON body sent as text/plain is read', async () => {
    const tok = await req(`${s.url}/demo/chat/token`, 'POST', JSON.stringify({ grant_type: 'client_credentials', client_id: s.demo.clientId, client_secret: s.demo.clientSecret }), { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://app.example.com' });
    assert.equal(tok.status, 200, tok.text);
    assert.equal(tok.headers.get('access-control-allow-origin'), '*');
    const denied = await req(`${s.url}/demo/chat/users`, 'GET', undefined, { origin: 'https://app.example.com' });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), '*');
    const missing = await req(`${s.url}/no/such/thing/here`, 'GET', undefined, { origin: 'https://app.example.com' });
    assert.equal(missing.headers.get('access-control-allow-origin'), '*');
  });
});

describe('CORS, a list of origins', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ CORS_ORIGINS: 'https://app.example.com, http://localhost:3000' });
  });
  after(() => s.close());

  test('a listed origin is echoed (with Vary: Origin); another gets no CORS headers', async () => {
    const ok = await req(`${s.url}/status`, 'GET', undefined, { origin: 'http://localhost:3000' });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://localhost:3000');
    assert.match(ok.headers.get('vary') ?? '', /Origin/);
    const other = await req(`${s.url}/status`, 'GET', undefined, { origin: 'https://evil.example.net' });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const pre = await fetch(`${s.url}/status`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'GET' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
  });
});
