import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { req, startTestServer, type TestServer } from '../helpers.js';

let s: TestServer;
before(async () => (s = await startTestServer()));
after(() => s.close());

test('GET /status answers ok with the JSON content type', async () => {
  const r = await req(`${s.url}/status`, 'GET');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ok');
  assert.equal(r.headers.get('content-type'), 'application/json;charset=UTF-8');
});

test('an unknown route is 404 service_resource_not_found', async () => {
  const r = await req(`${s.url}/no/such/route/here`, 'GET');
  assert.equal(r.status, 404);
  assert.equal(r.body.error, 'service_resource_not_found');
  assert.equal(r.body.error_description, 'Service resource not found');
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(r.headers.get('content-type'), 'application/json;charset=UTF-8');
});
