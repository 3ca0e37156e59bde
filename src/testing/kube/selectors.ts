/**
 * Label and field selectors in the real grammar (`a=b,c!=d,e in (x,y),!f`), so that the same
 * selector strings a backend sends to a real cluster filter the same objects here.
 */
import { apiErrors } from './status.js';

type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;
export type FieldSelector = (fields: Record<string, string>) => boolean;

/** Splits on commas that are not inside parentheses (`a in (x,y),b=c`). */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t.length > 0);
}

function parseLabelRequirement(term: string): Requirement {
  const setMatch = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (setMatch) {
    const values = setMatch[3]!.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
    return { key: setMatch[1]!, op: setMatch[2] as 'in' | 'notin', values };
  }
  const cmp = /^([^\s!=]+)\s*(==|!=|=)\s*([^\s,=!]*)$/.exec(term);
  if (cmp) return { key: cmp[1]!, op: cmp[2] === '!=' ? 'neq' : 'eq', value: cmp[3]! };
  const notExists = /^!\s*([^\s!=]+)$/.exec(term);
  if (notExists) return { key: notExists[1]!, op: 'notexists' };
  if (/^[^\s!=(),]+$/.test(term)) return { key: term, op: 'exists' };
  throw apiErrors.badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
}

function matches(req: Requirement, value: string | undefined): boolean {
  switch (req.op) {
    case 'eq':
      return value === req.value;
    case 'neq':
      return value !== req.value;
    case 'in':
      return value !== undefined && req.values.includes(value);
    case 'notin':
      return value === undefined || !req.values.includes(value);
    case 'exists':
      return value !== undefined;
    case 'notexists':
      return value === undefined;
  }
}

export function parseLabelSelector(selector: string | undefined): LabelSelector {
  if (!selector) return () => true;
  const requirements = splitTerms(selector).map(parseLabelRequirement);
  return (labels) => requirements.every((r) => matches(r, labels?.[r.key]));
}

/**
 * Field selectors only support `=`, `==` and `!=` on the fields a resource declares; anything else
 * is refused with the real server's 400 text.
 */
export function parseFieldSelector(selector: string | undefined, supported: readonly string[]): FieldSelector {
  if (!selector) return () => true;
  const requirements = splitTerms(selector).map((term) => {
    const m = /^([^\s!=]+)\s*(==|!=|=)\s*(.*)$/.exec(term);
    if (!m) throw apiErrors.badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const key = m[1]!;
    if (!supported.includes(key)) throw apiErrors.badRequest(`field label not supported: ${key}`);
    return { key, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]!.trim() } as Requirement;
  });
  return (fields) => requirements.every((r) => matches(r, fields[r.key] ?? ''));
}

/** A `metav1.LabelSelector` object, as Deployments, ReplicaSets and PodDisruptionBudgets carry it. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** Whether labels satisfy a selector object (an empty selector matches everything). */
export function matchesLabelSelector(selector: LabelSelectorObject, labels: Record<string, string> | undefined): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (have[key] !== value) return false;
  for (const e of selector.matchExpressions ?? []) {
    const value = have[e.key];
    const ok =
      e.operator === 'In' ? value !== undefined && (e.values ?? []).includes(value)
      : e.operator === 'NotIn' ? value === undefined || !(e.values ?? []).includes(value)
      : e.operator === 'Exists' ? value !== undefined
      : value === undefined;
    if (!ok) return false;
  }
  return true;
}

/** The selector in the string grammar (`app=web,tier in (a,b)`), as a Scale's `status.selector`. */
export function selectorString(selector: LabelSelectorObject): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    if (e.operator === 'In') terms.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'NotIn') terms.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'Exists') terms.push(e.key);
    else terms.push(`!${e.key}`);
  }
  return terms.join(',');
}
