/**
 * `networking.k8s.io/v1` NetworkPolicy: stored, defaulted and validated as the real registry does
 * (policy types, peers, ports, CIDRs), so that a deploy kit's policies apply. The emulated
 * cluster does NOT enforce them: every pod reaches every other over loopback.
 */
import { isIP } from 'node:net';
import { NetworkPolicy as NetworkPolicyModel } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { StatusCause } from '../status.js';
import { ALL_VERBS, fieldsOf, invalidValue, notSupported, required, schemaAndName, type ResourceDefinition } from '../strategy.js';
import type { KubeObject } from '../types.js';

interface Port {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

interface Peer {
  podSelector?: unknown;
  namespaceSelector?: unknown;
  ipBlock?: { cidr?: string; except?: string[] };
}

interface Rule {
  ports?: Port[];
  from?: Peer[];
  to?: Peer[];
}

interface PolicySpec {
  podSelector?: unknown;
  policyTypes?: string[];
  ingress?: Rule[];
  egress?: Rule[];
}

function defaults(object: KubeObject): void {
  const spec = (object.spec ??= {}) as PolicySpec;
  spec.podSelector ??= {};
  if (!spec.policyTypes || spec.policyTypes.length === 0) spec.policyTypes = spec.egress ? ['Ingress', 'Egress'] : ['Ingress'];
  for (const rule of [...(spec.ingress ?? []), ...(spec.egress ?? [])]) for (const port of rule.ports ?? []) port.protocol ??= 'TCP';
}

function cidrValid(cidr: string): boolean {
  const match = /^(.+)\/(\d{1,3})$/.exec(cidr);
  if (!match) return false;
  const family = isIP(match[1]!);
  return family !== 0 && Number(match[2]) <= (family === 4 ? 32 : 128);
}

const CIDR_MESSAGE = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';

function ruleCauses(rules: Rule[] | undefined, direction: 'ingress' | 'egress'): StatusCause[] {
  const causes: StatusCause[] = [];
  (rules ?? []).forEach((rule, i) => {
    const at = `spec.${direction}[${i}]`;
    (rule.ports ?? []).forEach((port, j) => {
      const p = `${at}.ports[${j}]`;
      if (port.protocol !== undefined && !['SCTP', 'TCP', 'UDP'].includes(port.protocol)) causes.push(notSupported(`${p}.protocol`, port.protocol, ['SCTP', 'TCP', 'UDP']));
      if (typeof port.port === 'number' && (port.port < 1 || port.port > 65535)) causes.push(invalidValue(`${p}.port`, port.port, 'must be between 1 and 65535, inclusive'));
      if (port.endPort !== undefined) {
        if (typeof port.port !== 'number') causes.push(required(`${p}.port`, 'must specify a port when endPort is set'));
        else if (port.endPort < port.port) causes.push(invalidValue(`${p}.endPort`, port.endPort, 'must be greater than or equal to `port`'));
      }
    });
    const peers = direction === 'ingress' ? rule.from : rule.to;
    (peers ?? []).forEach((peer, j) => {
      const p = `${at}.${direction === 'ingress' ? 'from' : 'to'}[${j}]`;
      const kinds = [peer.podSelector, peer.namespaceSelector, peer.ipBlock].filter((k) => k !== undefined).length;
      if (kinds === 0) causes.push(required(p, 'must specify a peer'));
      if (peer.ipBlock && kinds > 1) causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: may not specify both ipBlock and another peer', field: p });
      if (peer.ipBlock) {
        const cidr = peer.ipBlock.cidr ?? '';
        if (!cidrValid(cidr)) causes.push(invalidValue(`${p}.ipBlock.cidr`, cidr, CIDR_MESSAGE));
        (peer.ipBlock.except ?? []).forEach((except, k) => {
          if (!cidrValid(except)) causes.push(invalidValue(`${p}.ipBlock.except[${k}]`, except, CIDR_MESSAGE));
        });
      }
    });
  });
  return causes;
}

const schemaChecks = schemaAndName(NetworkPolicyModel);

function validate(object: KubeObject): StatusCause[] {
  const causes = schemaChecks(object);
  if (causes.length > 0) return causes;
  const spec = (object.spec ?? {}) as PolicySpec;
  (spec.policyTypes ?? []).forEach((type, i) => {
    if (!['Ingress', 'Egress'].includes(type)) causes.push(notSupported(`spec.policyTypes[${i}]`, type, ['Egress', 'Ingress']));
  });
  return [...causes, ...ruleCauses(spec.ingress, 'ingress'), ...ruleCauses(spec.egress, 'egress')];
}

export const NETWORK_POLICIES: ResourceDefinition = {
  group: 'networking.k8s.io',
  version: 'v1',
  name: 'networkpolicies',
  singularName: 'networkpolicy',
  kind: 'NetworkPolicy',
  deleteReturnsStatus: true,
  namespaced: true,
  shortNames: ['netpol'],
  verbs: ALL_VERBS,
  subresources: {},
  fields: fieldsOf(),
  tracksGeneration: true,
  prepareForCreate: defaults,
  prepareForUpdate: defaults,
  validate,
};
