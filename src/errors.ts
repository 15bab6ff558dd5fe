/**
 * The one error type of chatvault. Every failure a client can cause leaves the server as an
 * ApiError, written by the HTTP error handler in the Easemob/Usergrid shape:
 * `{error, timestamp, duration, exception, error_description}`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string | undefined,
    readonly exception: string | undefined = exceptionFor(code),
    /** OAuth-style body (`error` + `error_description` only), as the token endpoints answer. */
    readonly oauth = false,
  ) {
    super(description ?? code);
  }
}

const UG = 'org.apache.usergrid';

const EXCEPTIONS: Record<string, string> = {
  illegal_argument: 'java.lang.IllegalArgumentException',
  json_parse: 'org.codehaus.jackson.JsonParseException',
  service_resource_not_found: `${UG}.services.exceptions.ServiceResourceNotFoundException`,
  duplicate_unique_property_exists: `${UG}.persistence.exceptions.DuplicateUniquePropertyExistsException`,
  required_property_not_found: `${UG}.persistence.exceptions.RequiredPropertyNotFoundException`,
  entity_not_found: `${UG}.persistence.exceptions.EntityNotFoundException`,
  expired_token: `${UG}.rest.exceptions.SecurityException`,
  auth_bad_access_token: `${UG}.rest.exceptions.SecurityException`,
  auth_unactivated_appuser: `${UG}.rest.exceptions.SecurityException`,
  unauthorized: 'org.apache.shiro.authz.UnauthorizedException',
  query_parse: `${UG}.persistence.exceptions.QueryParseException`,
  query_token: `${UG}.persistence.exceptions.QueryTokenException`,
  number_format: 'java.lang.NumberFormatException',
  organization_application_not_found: `${UG}.management.exceptions.OrganizationApplicationNotFoundException`,
  management: `${UG}.management.exceptions.ManagementException`,
  forbidden_op: 'EasemobForbiddenOpException',
  invalid_parameter: 'java.lang.IllegalArgumentException',
  web_application: 'javax.ws.rs.WebApplicationException',
  unsupported_service_operation: `${UG}.services.exceptions.UnsupportedServiceOperationException`,
  internal: 'java.lang.RuntimeException',
};

function exceptionFor(code: string): string | undefined {
  return EXCEPTIONS[code];
}

/** The errors of the catalogue (spec §7.2) that several places raise. */
export const errors = {
  illegalArgument: (d: string) => new ApiError(400, 'illegal_argument', d),
  jsonParse: (d: string) => new ApiError(400, 'json_parse', d),
  notFound: () => new ApiError(404, 'service_resource_not_found', 'Service resource not found'),
  /** A group or chat room rule refused the operation (spec §3.2). */
  forbiddenOp: (d: string) => new ApiError(403, 'forbidden_op', d),
  appNotFound: (org: string, app: string, rest: string) =>
    new ApiError(404, 'organization_application_not_found', `Could not find application for ${org}/${app} from URI: ${org}/${app}/${rest}`),
  orgNotFound: (org: string) => new ApiError(404, 'organization_application_not_found', `Could not find organization for ${org}`),
  expiredToken: () => new ApiError(401, 'expired_token', 'Unable to authenticate due to expired access token'),
  corruptToken: () => new ApiError(401, 'auth_bad_access_token', 'Unable to authenticate due to corrupt access token'),
  unknownToken: () => new ApiError(401, 'auth_bad_access_token', 'Unable to authenticate'),
  noPermission: (verb: string, appUuid: string, path: string) =>
    new ApiError(401, 'unauthorized', `Subject does not have permission [applications:${verb}:${appUuid}:${path}]`),
  unauthorized: (d: string) => new ApiError(401, 'unauthorized', d),
  /** A deactivated IM user's token or password grant (OAuth form at the token endpoint). */
  deactivatedUser: (name: string, oauth = false) => new ApiError(401, 'auth_unactivated_appuser', `user ${name} is deactivated`, undefined, oauth),
  invalidGrant: (d: string) => new ApiError(400, 'invalid_grant', d, undefined, true),
  tooLarge: () => new ApiError(413, 'Request Entity Too Large', 'Request Entity Too Large', undefined),
  duplicateUser: (appUuid: string, name: string) =>
    new ApiError(400, 'duplicate_unique_property_exists',
      `Application ${appUuid} Entity user requires that property named username be unique, value of ${name} exists`),
  internal: () => new ApiError(500, 'internal', 'Internal server error'),
};
