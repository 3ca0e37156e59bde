/**
 * `import()` of a specifier computed at run time, for the library's own code. A runner started
 * from the bundle compiles it with `vm.Script` and a V8 code cache (src/runner/start-bundle.cts),
 * and on Node 20 a function restored from a code cache loses the script's dynamic import: its
 * `import()` rejects ("A dynamic import callback was not specified"). That starter puts a real
 * `import()` of its own in this process-wide slot; everywhere else `import()` is used as is.
 */
export const DYNAMIC_IMPORT = Symbol.for('flame-actors.dynamicImport');

type Importer = (specifier: string) => Promise<unknown>;

export function dynamicImport(specifier: string): Promise<unknown> {
  const provided = (globalThis as { [DYNAMIC_IMPORT]?: Importer })[DYNAMIC_IMPORT];
  return provided !== undefined ? provided(specifier) : import(specifier);
}
