/**
 * `new C(props, true)` of a `Schema.Class` (validation off) without the constructor's per-call
 * walk: the constructor copies `props`, then looks at EVERY field of the class for a constructor
 * default (`lazilyMergeDefaults`: `Reflect.ownKeys` and a look at each field's AST; a `Task` has
 * 38 fields and two defaults), then copies the result again into the instance. A worker builds
 * several tasks and task events per no-op task (the decode of each read, each transition), and
 * that walk was ~4 % of the memory drain's CPU (BENCHMARKS.md, twelfth re-run … worker steps).
 *
 * The maker found here gives the same object: the class's prototype, the same own properties in
 * the same order (`props`' own enumerable keys, then each default the constructor would have
 * added), the same values. It is only for props a validated instance already vouches for (the
 * same contract as `new C(props, true)`): nothing read from the bucket skips its decode.
 * test/domain/Unchecked.test.ts compares it with the constructor.
 *
 * @since 0.1.0
 * @module
 */
import { Schema } from "effect"

/** The AST node of a property signature that may carry a constructor default. */
interface DefaultCarrier {
  readonly _tag: string
  readonly defaultValue?: (() => unknown) | undefined
  readonly to?: { readonly defaultValue?: (() => unknown) | undefined }
}

/**
 * A maker of `cls` instances equal to `new cls(props, true)`, for props taken from validated
 * instances (or checked by the caller as the Schema would).
 *
 * @since 0.1.0
 * @category constructors
 */
export const uncheckedMaker = <Self, Props>(
  cls: (new(props: Props, options?: boolean) => Self) & { readonly fields: Schema.Struct.Fields }
): (props: Props) => Self => {
  const defaults: Array<readonly [string, () => unknown]> = []
  for (const key of Reflect.ownKeys(cls.fields)) {
    const field = cls.fields[key as string]
    if (!Schema.isPropertySignature(field)) continue
    const ast = field.ast as unknown as DefaultCarrier
    const defaultValue = ast._tag === "PropertySignatureDeclaration" ? ast.defaultValue : ast.to?.defaultValue
    if (defaultValue !== undefined) defaults.push([key as string, defaultValue])
  }
  const proto = cls.prototype as object
  return (props) => {
    // a spread literal given the prototype after, not `Object.assign(Object.create(proto), props)`:
    // V8 turns an object given 20-odd keys one by one into a dictionary (every later read, spread
    // and encode of a task took the slow path); a literal's copy keeps fast properties
    const self = Object.setPrototypeOf({ ...props }, proto) as Record<string, unknown>
    for (const [key, value] of defaults) if (self[key] === undefined) self[key] = value()
    return self as Self
  }
}
