/**
 * Query parameters read as the real API server reads them. kube-apiserver decodes `?watch=`,
 * `?follow=`, `?allowWatchBookmarks=`... through apimachinery's parameter codec, whose boolean
 * rule (`Convert_Slice_string_To_bool`) is: absent is false, `0` or `false` in any letter case is
 * false, anything else (`true`, `True`, `1`, `yes`, even an empty value) is true. Integers are
 * parsed as Go's `strconv.ParseInt` does, a bad one is a 400.
 *
 * The list checks (`resourceVersionMatch`, a `resourceVersion` newer than the store) are here as
 * well, with the real Status bodies.
 */
import { ApiError, apiErrors, failure, type StatusCause } from './status.js';

/** A boolean query parameter, as kube-apiserver's parameter codec decodes it. */
export function queryBool(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null) return false;
  return !(value === '0' || value.toLowerCase() === 'false');
}

/** The same, keeping "not given" apart (for `*bool` options such as `sendInitialEvents`). */
export function optionalQueryBool(query: URLSearchParams, name: string): boolean | undefined {
  return query.has(name) ? queryBool(query, name) : undefined;
}

/** An int64 query parameter: undefined when absent or empty, 400 when not a decimal integer. */
export function integerParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^[+-]?\d+$/.test(raw)) {
    throw apiErrors.badRequest(`strconv.ParseInt: parsing ${JSON.stringify(raw)}: invalid syntax`);
  }
  return Number(raw);
}

/** 422 for options the server refuses, worded as `ListOptions.meta.k8s.io "" is invalid: ...`. */
function invalidListOptions(causes: StatusCause[]): ApiError {
  const described = causes.map((c) => `${c.field}: ${c.message}`);
  const list = described.length === 1 ? described[0] : `[${described.join(', ')}]`;
  return new ApiError(
    failure(422, 'Invalid', `ListOptions.meta.k8s.io "" is invalid: ${list}`, { name: '', group: 'meta.k8s.io', kind: 'ListOptions', causes }),
  );
}

export type ResourceVersionMatch = 'Exact' | 'NotOlderThan';

export interface ListVersion {
  /** The revision the list must be at least as new as (undefined: "any", i.e. unset or `0`). */
  minimum: number | undefined;
  match: ResourceVersionMatch | undefined;
}

/**
 * Checks a list's `resourceVersion`/`resourceVersionMatch` as apimachinery's
 * `ValidateListOptions` does, and parses the version.
 */
export function listVersion(query: URLSearchParams): ListVersion {
  const resourceVersion = query.get('resourceVersion') ?? '';
  const match = query.get('resourceVersionMatch') ?? '';
  const causes: StatusCause[] = [];
  if (match !== '') {
    const forbidden = (message: string): StatusCause => ({ reason: 'FieldValueForbidden', message: `Forbidden: ${message}`, field: 'resourceVersionMatch' });
    if (resourceVersion === '') causes.push(forbidden('resourceVersionMatch is forbidden unless resourceVersion is provided'));
    if ((query.get('continue') ?? '') !== '') causes.push(forbidden('resourceVersionMatch is forbidden when continue is provided'));
    if (match !== 'Exact' && match !== 'NotOlderThan') {
      causes.push({
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${JSON.stringify(match)}: supported values: "Exact", "NotOlderThan", ""`,
        field: 'resourceVersionMatch',
      });
    }
    if (match === 'Exact' && resourceVersion === '0') causes.push(forbidden('resourceVersionMatch "exact" is forbidden for resourceVersion "0"'));
  }
  if (query.has('sendInitialEvents')) {
    causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: sendInitialEvents is forbidden for list', field: 'sendInitialEvents' });
  }
  if (causes.length > 0) throw invalidListOptions(causes);
  let minimum: number | undefined;
  if (resourceVersion !== '' && resourceVersion !== '0') {
    if (!/^\d+$/.test(resourceVersion)) {
      throw apiErrors.badRequest(`resourceVersion: Invalid value: "${resourceVersion}": strconv.ParseUint: parsing "${resourceVersion}": invalid syntax`);
    }
    minimum = Number(resourceVersion);
  }
  return { minimum, match: match === '' ? undefined : (match as ResourceVersionMatch) };
}

/** How long the real watch cache waits for a newer revision before giving up (its `blockTimeout`). */
export const FUTURE_VERSION_WAIT_MS = 3000;

/**
 * 504 for a list at a revision the store has not reached, with the body kube-apiserver's watch
 * cache sends: reason `Timeout`, a `ResourceVersionTooLarge` cause, and a retry hint (which the
 * server also puts in `Retry-After`).
 */
export function tooLargeResourceVersion(requested: number, current: number): ApiError {
  const retryAfterSeconds = 1;
  return new ApiError(
    failure(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
      causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
      retryAfterSeconds,
    }),
    { 'Retry-After': String(retryAfterSeconds) },
  );
}
