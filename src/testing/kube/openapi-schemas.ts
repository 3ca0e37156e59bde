/**
 * OpenAPI v3 schemas of the served kinds, for `kubectl explain`. No npm package ships the official
 * `swagger.json`, but `kubernetes-models` (already the emulator's schema validator) ships each
 * type's declaration, generated from it, with every field's description: this reads those
 * declarations (`export interface IPodSpec { /** doc *\/ "field"?: Type; ... }`) once, when first
 * asked, and turns them into the schemas the real server publishes (`io.k8s.api.core.v1.PodSpec`,
 * `$ref`s between them, `x-kubernetes-group-version-kind` on the kinds, the strategic-merge keys
 * of the lists that have one, so that `kubectl apply` merges them as with a real server).
 *
 * Numbers are published as integers: the declarations do not tell int from float, and in the
 * official schemas every number of the served kinds is one (the only floating-point fields, with
 * format `double`, are in CRD schemas: `maximum`, `minimum`, `multipleOf`). The int32/int64
 * format is not told apart.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { MERGE_KEYS } from './patch.js';

export type OpenApiSchema = Record<string, unknown>;

interface Parsed {
  description: string | undefined;
  properties: { name: string; required: boolean; description: string | undefined; type: string }[];
  imports: Map<string, string>;
}

const require = createRequire(import.meta.url);

/** A package's folder; kubernetes-models' own dependencies are looked up from it (they may be nested under it). */
function packageDir(name: string): string {
  if (name === 'kubernetes-models') return dirname(require.resolve('kubernetes-models/package.json'));
  return dirname(createRequire(join(packageDir('kubernetes-models'), 'package.json')).resolve(`${name}/package.json`));
}

/** Where a kind's declaration is: core kinds in `v1/`, the others in their group's folder. */
export function declarationOf(group: string, version: string, kind: string): string {
  return join(packageDir('kubernetes-models'), group === '' ? version : `${group}/${version}`, `${kind}.d.ts`);
}

/** `IIoK8sApiCoreV1PodSpec` -> `io.k8s.api.core.v1.PodSpec`, as the real documents name schemas. */
export function schemaName(identifier: string): string {
  const id = identifier.replace(/^I/, '');
  const api = /^IoK8sApi([A-Z][a-z0-9]*)(V\d+(?:(?:alpha|beta)\d+)?)([A-Z].*)$/.exec(id);
  if (api) return `io.k8s.api.${api[1]!.toLowerCase()}.${api[2]!.toLowerCase()}.${api[3]}`;
  const machinery = /^IoK8sApimachineryPkg(Apis|Api|Util|Runtime)([A-Z][a-z0-9]*)(V\d+)?([A-Z].*)$/.exec(id);
  if (machinery) {
    const parts = ['io.k8s.apimachinery.pkg', machinery[1]!.toLowerCase(), machinery[2]!.toLowerCase()];
    if (machinery[3]) parts.push(machinery[3].toLowerCase());
    return `${parts.join('.')}.${machinery[4]}`;
  }
  return id;
}

function doc(text: string | undefined): string | undefined {
  if (!text) return undefined;
  return text
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, ''))
    .join('\n')
    .trim();
}

function parseDeclaration(source: string): Parsed {
  const imports = new Map<string, string>();
  for (const m of source.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    for (const name of m[1]!.split(',').map((n) => n.trim())) imports.set(name, m[2]!);
  }
  const body = /(?:\/\*\*([\s\S]*?)\*\/\s*)?export interface I\w+(?: extends [\w, ]+)? \{([\s\S]*?)\n\}/.exec(source);
  const properties: Parsed['properties'] = [];
  if (body) {
    for (const p of body[2]!.matchAll(/(?:\/\*\*([\s\S]*?)\*\/\s*)?"([^"]+)"(\??): (\{[^}]*\}|[^;]+);/g)) {
      properties.push({ name: p[2]!, required: p[3] !== '?', description: doc(p[1]), type: p[4]!.replace(/\s+/g, ' ').trim() });
    }
  }
  return { description: doc(body?.[1]), properties, imports };
}

/** The aliases of apimachinery that are not objects. */
const SCALARS: Record<string, OpenApiSchema> = {
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { type: 'string', 'x-kubernetes-int-or-string': true },
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { type: 'string', format: 'int-or-string', 'x-kubernetes-int-or-string': true },
  'io.k8s.apimachinery.pkg.apis.meta.v1.Time': { type: 'string', format: 'date-time' },
  'io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime': { type: 'string', format: 'date-time' },
  'io.k8s.apimachinery.pkg.runtime.RawExtension': { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  'io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1': { type: 'object' },
};

export class SchemaCatalog {
  private readonly schemas = new Map<string, OpenApiSchema>();
  private readonly references = new Map<string, Set<string>>();

  /** Reads a kind's declaration and everything it refers to (once). */
  async addKind(group: string, version: string, kind: string): Promise<string> {
    const name = await this.addFile(declarationOf(group, version, kind), `I${kind}`);
    const schema = this.schemas.get(name);
    if (schema) schema['x-kubernetes-group-version-kind'] = [{ group, kind, version }];
    return name;
  }

  /** The schemas a document with these roots needs: the roots and all they refer to. */
  closure(roots: string[]): Record<string, OpenApiSchema> {
    const out: Record<string, OpenApiSchema> = {};
    const pending = [...roots];
    for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
      if (out[name] || !this.schemas.has(name)) continue;
      out[name] = this.schemas.get(name)!;
      pending.push(...(this.references.get(name) ?? []));
    }
    return out;
  }

  private async addFile(path: string, identifier: string): Promise<string> {
    const source = await readFile(path, 'utf8');
    const exported = /export \{ I(\w+) as (I\w+)/.exec(source)?.[2] ?? identifier;
    const name = schemaName(exported);
    if (this.schemas.has(name)) return name;
    if (SCALARS[name]) {
      this.schemas.set(name, SCALARS[name]);
      return name;
    }
    const parsed = parseDeclaration(source);
    const schema: OpenApiSchema = { type: 'object' };
    this.schemas.set(name, schema);
    const refs = new Set<string>();
    this.references.set(name, refs);
    if (parsed.description) schema.description = parsed.description;
    const properties: Record<string, OpenApiSchema> = {};
    for (const p of parsed.properties) {
      const property = await this.typeSchema(p.type, parsed.imports, path, refs);
      if (p.description) {
        if (property.$ref) properties[p.name] = { description: p.description, allOf: [{ $ref: property.$ref }] };
        else properties[p.name] = { ...property, description: p.description };
      } else properties[p.name] = property;
      const mergeKey = MERGE_KEYS[p.name];
      if (mergeKey && property.type === 'array') Object.assign(properties[p.name]!, { 'x-kubernetes-patch-merge-key': mergeKey, 'x-kubernetes-patch-strategy': 'merge' });
    }
    schema.properties = properties;
    const required = parsed.properties.filter((p) => p.required && p.name !== 'apiVersion' && p.name !== 'kind').map((p) => p.name);
    if (required.length > 0) schema.required = required;
    return name;
  }

  private async typeSchema(type: string, imports: Map<string, string>, from: string, refs: Set<string>): Promise<OpenApiSchema> {
    if (type === 'string') return { type: 'string' };
    if (type === 'number') return { type: 'integer', format: 'int32' };
    if (type === 'boolean') return { type: 'boolean' };
    if (/^"[^"]*"( \| "[^"]*")*$/.test(type)) return { type: 'string', enum: type.split(' | ').map((v) => v.slice(1, -1)) };
    const array = /^Array<(.+)>$/.exec(type);
    if (array) return { type: 'array', items: await this.typeSchema(array[1]!, imports, from, refs) };
    const map = /^\{\s*\[key: string\]: (.+?);?\s*\}$/.exec(type);
    if (map) return { type: 'object', additionalProperties: await this.typeSchema(map[1]!, imports, from, refs) };
    const module = imports.get(type);
    if (module) {
      const file = module.startsWith('.') ? resolve(dirname(from), `${module}.d.ts`) : join(packageDir(module.split('/').slice(0, 2).join('/')), `${module.split('/').slice(2).join('/')}.d.ts`);
      const name = await this.addFile(file, type);
      refs.add(name);
      return { $ref: `#/components/schemas/${name}` };
    }
    return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  }
}
