/**
 * The JSON text of frozen objects, computed once. Stored objects (and every object inside them)
 * are deep-frozen, so their text never changes: one serialisation per resourceVersion serves every
 * watch event, GET and list that sends the object, and every "did this edit change anything"
 * comparison. While 100 pods start, each pod revision is otherwise stringified once per watcher
 * and once more per comparison.
 */
const texts = new WeakMap<object, string>();

/** `JSON.stringify(value)`, remembered for a frozen object (anything else is stringified each time). */
export function frozenJson(value: unknown): string {
  if (value === null || typeof value !== 'object' || !Object.isFrozen(value)) return JSON.stringify(value);
  let text = texts.get(value);
  if (text === undefined) texts.set(value, (text = JSON.stringify(value)));
  return text;
}
