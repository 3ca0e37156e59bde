/**
 * Just enough OpenAPI v3 for kubectl: `kubectl apply`/`create` validate a manifest either on the
 * client (which needs the full schemas) or, when the PATCH operation of the kind advertises the
 * `fieldValidation` query parameter, by asking the server to. Advertising it keeps kubectl from
 * downloading schemas the emulator does not serve; the server validates pods itself.
 *
 * The PATCH operations declare no strategic-merge body schema, so `kubectl apply` computes its
 * strategic merge patches from its built-in types, as it does with any server lacking schemas.
 */
import { RESOURCES } from './resources.js';

const DOCUMENT_HASH = 'flame-emulator-v1';

export function openApiV3Index(): unknown {
  return { paths: { 'api/v1': { serverRelativeURL: `/openapi/v3/api/v1?hash=${DOCUMENT_HASH}` } } };
}

export function openApiV3CoreDocument(): unknown {
  const paths: Record<string, unknown> = {};
  const fieldValidation = {
    name: 'fieldValidation',
    in: 'query',
    description: 'Strict, Warn or Ignore: how the server treats unknown or duplicate fields.',
    schema: { type: 'string', uniqueItems: true },
  };
  for (const resource of RESOURCES) {
    const path = resource.namespaced ? `/api/v1/namespaces/{namespace}/${resource.name}/{name}` : `/api/v1/${resource.name}/{name}`;
    const gvk = { group: '', version: 'v1', kind: resource.kind };
    paths[path] = {
      patch: {
        operationId: `patchCoreV1${resource.kind}`,
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
