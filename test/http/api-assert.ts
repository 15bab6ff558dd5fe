import assert from 'node:assert/strict';
import type { Res } from '../helpers.js';

/** Assertions on Easemob response bodies shared by the HTTP tests. */

export const JSON_CT = 'application/json;charset=UTF-8';
const EXCEPTIONS: Record<string, string> = {
  illegal_argument: 'java.lang.IllegalArgumentException',
  unauthorized: 'org.apache.shiro.authz.UnauthorizedException',
  service_resource_not_found: 'org.apache.usergrid.services.exceptions.ServiceResourceNotFoundException',
  auth_unactivated_appuser: 'org.apache.usergrid.rest.exceptions.SecurityException',
  auth_bad_access_token: 'org.apache.usergrid.rest.exceptions.SecurityException',
  forbidden_op: 'EasemobForbiddenOpException',
  invalid_parameter: 'java.lang.IllegalArgumentException',
  duplicate_unique_property_exists: 'org.apache.usergrid.persistence.exceptions.DuplicateUniquePropertyExistsException',
  organization_application_not_found: 'org.apache.usergrid.management.exceptions.OrganizationApplicationNotFoundException',
  entity_not_found: 'org.apache.usergrid.persistence.exceptions.EntityNotFoundException',
  json_parse: 'org.codehaus.jackson.JsonParseException',
};

/** An Easemob error body: status, code, description (text or pattern, when given), exception, timestamp, duration. */
export function assertErrorBody(r: Res, status: number, error: string, description?: string | RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.body.error, error, r.text);
  if (description instanceof RegExp) assert.match(r.body.error_description, description);
  else if (description !== undefined) assert.equal(r.body.error_description, description);
  assert.equal(r.body.exception, EXCEPTIONS[error]);
  assert.equal(typeof r.body.timestamp, 'number');
  assert.equal(typeof r.body.duration, 'number');
}

/** An error body with exactly error, timestamp, duration, exception and error_description. */
export function assertError(r: Res, status: number, error: string, description: string): void {
  assertErrorBody(r, status, error, description);
  assert.deepEqual(Object.keys(r.body).sort(), ['duration', 'error', 'error_description', 'exception', 'timestamp'], r.text);
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
