/**
 * {@link Wire}: the type of a value after it crossed the wire (msgpackr with the extensions of
 * `src/cluster/codec.ts`), so that `pool.call` promises what really arrives.
 */

type Primitive = string | number | boolean | bigint | null | undefined;

/** Kept as they are: msgpackr has a type for each. */
type Kept =
  | Date
  | RegExp
  | ArrayBuffer
  | DataView
  | Buffer
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Uint32Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * What a value of type `T` becomes on the other side:
 * - primitives (`bigint` included), `Date`, `RegExp`, `Buffer`, typed arrays, `ArrayBuffer`,
 *   `DataView` arrive as they are; `Map` and `Set` too, with their contents converted;
 * - an `Error` arrives as an `Error` (built-in classes and flame-actors errors keep their class,
 *   others become a `RemoteError` carrying the class name);
 * - an object with `toJSON` (a `URL`, a class of yours) arrives as what `toJSON` returns;
 * - any other object arrives as a plain object of its own enumerable properties: methods,
 *   getters, the prototype (the class) and symbol keys are lost, and keys whose value is
 *   `undefined` are dropped;
 * - functions and symbols cannot be sent: the call fails with `EncodeError`.
 * Actor refs (nact's `Ref`) arrive as working refs; nact's `Ref<T>` type has no members, so
 * the plain-object rule keeps them assignable to any `Ref`.
 */
export type Wire<T> = T extends Primitive
  ? T
  : T extends (...args: never[]) => unknown
    ? never
    : T extends symbol
      ? never
      : T extends Kept
        ? T
        : T extends Error
          ? Error
          : T extends ReadonlyMap<infer K, infer V>
            ? Map<Wire<K>, Wire<V>>
            : T extends ReadonlySet<infer V>
              ? Set<Wire<V>>
              : T extends { toJSON(): infer J }
                ? J
                : T extends readonly unknown[]
                  ? { -readonly [I in keyof T]: Wire<T[I]> }
                  : { -readonly [K in keyof T as K extends symbol ? never : T[K] extends (...args: never[]) => unknown ? never : K]: Wire<T[K]> };
