/**
 * Published JSON Schemas of a task type (`schemas/{task_type}.json` = `{ input?, output? }`, the
 * reference's shape), validated with JSON Schema draft 2020-12 (ajv) and every error reported. A
 * `pattern` that may take exponential time is refused when a schema is compiled (RegexCost).
 *
 * @module
 */
import { Effect, Schema } from "effect"
import type { Ajv2020 } from "ajv/dist/2020.js"
import type { ErrorObject, ValidateFunction } from "ajv"
import { InvalidArgument } from "./QueueError.js"
import { catastrophicPattern } from "./RegexCost.js"
import { SchemaValidationFailed } from "./TaskErrors.js"

/**
 * A JSON Schema document (an object, or a boolean schema).
 *
 * @since 0.1.0
 * @category models
 */
export const JsonSchema = Schema.Union(Schema.Record({ key: Schema.String, value: Schema.Unknown }), Schema.Boolean)

/**
 * A JSON Schema document.
 *
 * @since 0.1.0
 * @category models
 */
export type JsonSchema = typeof JsonSchema.Type

/**
 * The published contract of one task type: optional JSON Schemas of its input and output.
 *
 * @since 0.1.0
 * @category models
 */
export class TaskJsonSchemas extends Schema.Class<TaskJsonSchemas>("TaskJsonSchemas")({
  input: Schema.optionalWith(JsonSchema, { exact: true }),
  output: Schema.optionalWith(JsonSchema, { exact: true })
}) {}

/**
 * Compiled validators of a task type's schemas.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompiledSchemas {
  readonly input: ValidateFunction | undefined
  readonly output: ValidateFunction | undefined
}

/**
 * The regular expressions of `pattern` and `patternProperties`, refused when they may take
 * exponential time (RegexCost): they run on every submit, and a match cannot be interrupted.
 */
const guardedRegExp = Object.assign(
  (pattern: string, flags: string) => {
    const problem = catastrophicPattern(pattern, flags)
    if (problem !== undefined) {
      throw new Error(
        `the pattern ${JSON.stringify(pattern)} ${problem}: its matching time can grow exponentially with the input; rewrite it so each part of the text can match only one way`
      )
    }
    return new RegExp(pattern, flags)
  },
  { code: "new RegExp" }
)

/**
 * ajv and ajv-formats, loaded on the first schema compiled (once): ~8 MB of memory that a process
 * whose task types publish no JSON Schema (most workers) does not pay.
 */
let ajvFactory: Promise<() => Ajv2020> | undefined
const makeAjv = Effect.promise(() =>
  (ajvFactory ??= Promise.all([import("ajv/dist/2020.js"), import("ajv-formats")]).then(([{ Ajv2020 }, formats]) => () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false, code: { regExp: guardedRegExp } })
    // ajv-formats is CommonJS: the namespace's `default` is `module.exports`, whose `.default` is the plugin.
    formats.default.default(ajv)
    return ajv
  }))
).pipe(Effect.map((make) => make()))

/**
 * Compiles a task type's schemas; an invalid JSON Schema fails with {@link InvalidArgument}.
 *
 * @since 0.1.0
 * @category utils
 */
export const compileSchemas = (taskType: string, schemas: TaskJsonSchemas): Effect.Effect<CompiledSchemas, InvalidArgument> =>
  schemas.input === undefined && schemas.output === undefined
    ? Effect.succeed<CompiledSchemas>({ input: undefined, output: undefined })
    : Effect.flatMap(makeAjv, (ajv) => {
    const compile = (which: "input" | "output", schema: JsonSchema | undefined) =>
      Effect.try({
        try: () => (schema === undefined ? undefined : ajv.compile(schema)),
        catch: (e) =>
          new InvalidArgument({
            argument: `schema.${which}`,
            message: `the ${which} JSON Schema of ${taskType} is not a valid draft 2020-12 schema: ${(e as Error).message}`
          })
      })
    return Effect.all({ input: compile("input", schemas.input), output: compile("output", schemas.output) })
  })

const describeErrors = (errors: ReadonlyArray<ErrorObject> | null | undefined): string =>
  (errors ?? []).map((e) => `${e.instancePath === "" ? "(root)" : e.instancePath} ${e.message ?? "is invalid"}`).join("; ")

/**
 * Validates a JSON value against a compiled validator, reporting every error.
 *
 * @since 0.1.0
 * @category utils
 */
export const validateAgainst = (
  taskType: string,
  which: "input" | "output",
  validate: ValidateFunction | undefined,
  value: unknown
): Effect.Effect<void, SchemaValidationFailed> =>
  validate === undefined || validate(value)
    ? Effect.void
    : Effect.fail(
      new SchemaValidationFailed({
        taskType,
        which,
        message: `${which} of ${taskType} does not match its published JSON Schema: ${describeErrors(validate.errors)}`
      })
    )
