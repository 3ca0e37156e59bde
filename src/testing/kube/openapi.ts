/**
 * Just enough OpenAPI v3 for kubectl: `kubectl apply`/`create` validate a manifest either on the
 * client (which needs the full schemas) or, when the PATCH operation of the kind advertises the
 * `fieldValidation` query parameter, by asking the server to. Advertising it keeps kubectl from
 * downloading schemas the emulator does not serve; the server validates pods itself.
 *
 * The PATCH operations declare no strategic-merge body schema, so `kubectl apply` computes its
 * strategic merge patches from its built-in types, as it does with any server lacking schemas.
 */
import { RESOURCES, servedGroups } from './resources.js';

const DOCUMENT_HASH = 'flame-emulator-v1';

export function openApiV3Index(): unknown {
  const paths: Record<string, unknown> = { 'api/v1': { serverRelativeURL: `/openapi/v3/api/v1?hash=${DOCUMENT_HASH}` } };
  for (const { group, version } of servedGroups()) {
    paths[`apis/${group}/${version}`] = { serverRelativeURL: `/openapi/v3/apis/${group}/${version}?hash=${DOCUMENT_HASH}` };
  }
  return { paths };
}

/** The document of one group version (`''`, `'v1'` for the core group), or undefined when not served. */
export function openApiV3Document(group = '', version = 'v1'): unknown {
  if (!RESOURCES.some((r) => r.group === group && r.version === version)) return undefined;
  const paths: Record<string, unknown> = {};
  const fieldValidation = {
    name: 'fieldValidation',
    in: 'query',
    description: 'Strict, Warn or Ignore: how the server treats unknown or duplicate fields.',
    schema: { type: 'string', uniqueItems: true },
  };
  const prefix = group ? `/apis/${group}/${version}` : '/api/v1';
  for (const resource of RESOURCES.filter((r) => r.group === group && r.version === version && !r.virtual)) {
    const path = resource.namespaced ? `${prefix}/namespaces/{namespace}/${resource.name}/{name}` : `${prefix}/${resource.name}/{name}`;
    const gvk = { group, version, kind: resource.kind };
    paths[path] = {
      patch: {
        operationId: `patch${resource.kind}`,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': gvk,
        parameters: [fieldValidation],
        requestBody: { content: { 'application/merge-patch+json': { schema: { type: 'object' } } } },
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (flame-actors emulated cluster)', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}
