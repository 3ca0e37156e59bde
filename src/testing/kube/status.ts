/**
 * `Status` bodies exactly as the real API server words them: clients (client-node's ApiException
 * body, kubectl's "Error from server (Reason): message") show these texts to people and match on
 * `reason`, so the emulator must not invent its own.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** Thrown anywhere inside the server; the HTTP layer turns it into the response it carries. */
export class ApiError extends Error {
  constructor(readonly status: Status, readonly headers: Record<string, string> = {}) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.name = 'ApiError';
  }
  get code(): number {
    return this.status.code;
  }
}

export function failure(code: number, reason: string | undefined, message: string, details?: StatusDetails): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code };
  if (reason !== undefined) status.reason = reason;
  if (details !== undefined) status.details = details;
  return status;
}

function qualified(resource: string, name?: string): string {
  return name ? `${resource} "${name}"` : resource;
}

function nameDetails(resource: string, name?: string): StatusDetails {
  return name ? { name, kind: resource } : { kind: resource };
}

export const apiErrors = {
  notFound(resource: string, name: string): ApiError {
    return new ApiError(failure(404, 'NotFound', `${resource} "${name}" not found`, nameDetails(resource, name)));
  },
  alreadyExists(resource: string, name: string): ApiError {
    return new ApiError(failure(409, 'AlreadyExists', `${resource} "${name}" already exists`, nameDetails(resource, name)));
  },
  conflict(resource: string, name: string, why: string): ApiError {
    return new ApiError(
      failure(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": ${why}`, nameDetails(resource, name)),
    );
  },
  forbidden(resource: string, name: string | undefined, why: string): ApiError {
    return new ApiError(failure(403, 'Forbidden', `${qualified(resource, name)} is forbidden: ${why}`, nameDetails(resource, name)));
  },
  /**
   * 422: `kind` is the object's kind, qualified outside the core group ("Pod", "Deployment.apps"),
   * as in `Pod "x" is invalid: spec.containers: Required value`; details carry kind and group apart.
   */
  invalid(kind: string, name: string, causes: StatusCause[]): ApiError {
    const described = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : (c.message ?? '')));
    const list = described.length === 1 ? described[0] : `[${described.join(', ')}]`;
    const dot = kind.indexOf('.');
    const details: StatusDetails = dot < 0 ? { name, kind, causes } : { name, group: kind.slice(dot + 1), kind: kind.slice(0, dot), causes };
    return new ApiError(failure(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, details));
  },
  expired(message: string): ApiError {
    return new ApiError(failure(410, 'Expired', message));
  },
  badRequest(message: string): ApiError {
    return new ApiError(failure(400, 'BadRequest', message));
  },
  methodNotAllowed(): ApiError {
    return new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  },
  notFoundPath(): ApiError {
    return new ApiError(failure(404, 'NotFound', 'the server could not find the requested resource'));
  },
  unauthorized(): ApiError {
    return new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
  },
  tooManyRequests(retryAfterSeconds: number): ApiError {
    return new ApiError(
      failure(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds }),
      { 'Retry-After': String(retryAfterSeconds) },
    );
  },
  internal(message: string): ApiError {
    return new ApiError(
      failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }),
    );
  },
  unsupportedMediaType(contentType: string): ApiError {
    return new ApiError(
      failure(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format (${contentType}) - accepted media types include: ` +
          'application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json',
      ),
    );
  },
  requestEntityTooLarge(limitBytes: number): ApiError {
    return new ApiError(failure(413, 'RequestEntityTooLarge', `the request body is larger than ${limitBytes} bytes`));
  },
};
