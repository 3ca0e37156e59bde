/**
 * OpenAPI v3 for kubectl: one document per served group version, with the schemas of its kinds
 * (openapi-schemas.ts, from `kubernetes-models`' declarations) for `kubectl explain`, and PATCH
 * operations advertising the `fieldValidation` query parameter, so that `kubectl apply`/`create`
 * ask the server to validate instead of validating on the client. The list fields that strategic
 * merge patches by key carry their merge keys, so `kubectl apply` builds the same patches as
 * against a real server.
 */
import { SchemaCatalog, type OpenApiSchema } from './openapi-schemas.js';
import { RESOURCES, servedGroups } from './resources.js';

// kubectl caches documents by this hash: a new one whenever what they hold changes.
const DOCUMENT_HASH = 'flame-emulator-v2';

const catalog = new SchemaCatalog();
const documentSchemas = new Map<string, Promise<Record<string, OpenApiSchema>>>();

/** The schemas of a group version's kinds and all they refer to, read once; none when they cannot be read. */
function schemasOf(group: string, version: string, kinds: string[]): Promise<Record<string, OpenApiSchema>> {
  const key = `${group}/${version}`;
  let found = documentSchemas.get(key);
  if (!found) {
    found = (async () => {
      const roots: string[] = [];
      for (const kind of kinds) {
        try {
          roots.push(await catalog.addKind(group, version, kind));
        } catch {
          // a kind kubernetes-models does not declare: served without a schema
        }
      }
      return catalog.closure(roots);
    })();
    documentSchemas.set(key, found);
  }
  return found;
}

export function openApiV3Index(): unknown {
  const paths: Record<string, unknown> = { 'api/v1': { serverRelativeURL: `/openapi/v3/api/v1?hash=${DOCUMENT_HASH}` } };
  for (const { group, version } of servedGroups()) {
    paths[`apis/${group}/${version}`] = { serverRelativeURL: `/openapi/v3/apis/${group}/${version}?hash=${DOCUMENT_HASH}` };
  }
  return { paths };
}

/** The document of one group version (`''`, `'v1'` for the core group), or undefined when not served. */
export function openApiV3Document(group = '', version = 'v1'): Promise<unknown> | undefined {
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
  const kinds = RESOURCES.filter((r) => r.group === group && r.version === version && !r.virtual).map((r) => r.kind);
  return schemasOf(group, version, kinds).then((schemas) => ({
    openapi: '3.0.0',
    info: { title: 'Kubernetes (flame-actors emulated cluster)', version: 'v1.32.0' },
    paths,
    components: { schemas },
  }));
}
