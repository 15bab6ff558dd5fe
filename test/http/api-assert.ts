import assert from 'node:assert/strict';
import type { Res } from '../helpers.js';

/** Assertions on Easemob response bodies shared by the contact and user-lifecycle tests. */

export const JSON_CT = 'application/json;charset=UTF-8';
const EXCEPTIONS: Record<string, string> = {
  illegal_argument: 'java.lang.IllegalArgumentException',
  unauthorized: 'org.apache.shiro.authz.UnauthorizedException',
  service_resource_not_found: 'org.apache.usergrid.services.exceptions.ServiceResourceNotFoundException',
  auth_unactivated_appuser: 'org.apache.usergrid.rest.exceptions.SecurityException',
  auth_bad_access_token: 'org.apache.usergrid.rest.exceptions.SecurityException',
  forbidden_op: 'EasemobForbiddenOpException',
  invalid_parameter: 'java.lang.IllegalArgumentException',
};

/** An error body with exactly error, timestamp, duration, exception and error_description. */
export function assertError(r: Res, status: number, error: string, description: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(r.body).sort(), ['duration', 'error', 'error_description', 'exception', 'timestamp'], r.text);
  assert.equal(r.body.error, error, r.text);
  assert.equal(r.body.error_description, description);
  assert.equal(r.body.exception, EXCEPTIONS[error]);
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
}

/** 404 service_resource_not_found. */
export function assertNotFound(r: Res): void {
  assertError(r, 404, 'service_resource_not_found', 'Service resource not found');
}

/** 401 for a token that may not act here: the shiro permission message naming the app. */
export function assertNoPermission(r: Res, verb: string, appUuid: string): void {
  assertError(r, 401, 'unauthorized', `Subject does not have permission [applications:${verb}:${appUuid}:/users]`);
}

/** A 200 with the JSON content type; `keys` is the exact set of top-level fields. */
export function assertOk(r: Res, keys: string[]): void {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(r.body).sort(), [...keys].sort(), r.text);
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
}

/** The full Usergrid envelope fields, without `data`/`entities`/`count`. */
export const ENVELOPE = ['action', 'application', 'params', 'path', 'uri', 'timestamp', 'duration', 'organization', 'applicationName'];
