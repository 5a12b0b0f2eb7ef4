/**
 * Typed task contracts shared by producer and worker:
 *
 * ```ts
 * const SendEmail = TaskType.make("send_email", {
 *   input: Schema.Struct({ to: Schema.String }),
 *   output: Schema.Struct({ sent: Schema.Boolean })
 * })
 * yield* queue.submit(SendEmail, { to: "a@b.c" })   // type-checked, encoded by the Schema
 * ```
 *
 * The producer encodes the input with `input`; the worker decodes it with the same Schema and
 * encodes its result with `output`. Plain string task types with unknown JSON work as well.
 *
 * @module
 */
import { Effect, Schema } from "effect"
import { describeParseError } from "./Codec.js"
import { SchemaValidationFailed } from "./TaskErrors.js"

/**
 * A named task type with Schemas for its input and output (Type side `I`/`O`, JSON side `II`/`OI`).
 *
 * @since 0.1.0
 * @category models
 */
export class TaskType<I, O, II = unknown, OI = unknown> {
  private constructor(
    /** The task type name stored in `task_type`. */
    readonly name: string,
    /** The input's Schema: encodes on submit, decodes in the worker. */
    readonly input: Schema.Schema<I, II>,
    /** The output's Schema: encodes in the worker, decodes for readers. */
    readonly output: Schema.Schema<O, OI>
  ) {}

  /**
   * Declares a task type. The name is checked at submit (a hostile name fails there, before any
   * write). Without `output`, the output is unknown JSON.
   */
  static make<I, II, O = unknown, OI = unknown>(
    name: string,
    schemas: { readonly input: Schema.Schema<I, II>; readonly output?: Schema.Schema<O, OI> }
  ): TaskType<I, O, II, OI> {
    const output = (schemas.output ?? Schema.Unknown) as Schema.Schema<O, OI>
    return new TaskType(name, schemas.input, output)
  }

  /** A task type with unknown JSON input and output (what a plain string type means). */
  static untyped(name: string): TaskType<unknown, unknown> {
    return new TaskType(name, Schema.Unknown, Schema.Unknown)
  }
}

/**
 * The task type name of a contract or string.
 *
 * @since 0.1.0
 * @category utils
 */
export const taskTypeName = (type: string | { readonly name: string }): string =>
  typeof type === "string" ? type : type.name

/**
 * Encodes an input with the contract's Schema, failing with the Schema's message.
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeInput = <I, O, II, OI>(type: TaskType<I, O, II, OI>, input: I) =>
  Schema.encode(type.input)(input).pipe(
    Effect.mapError(
      (error) =>
        new SchemaValidationFailed({
          taskType: type.name,
          which: "input",
          message: `input of ${type.name} is invalid: ${describeParseError(error)}`
        })
    )
  )

/**
 * Decodes a stored input with the contract's Schema (what the worker does before running a handler).
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeInput = <I, O, II, OI>(type: TaskType<I, O, II, OI>, json: unknown) =>
  Schema.decodeUnknown(type.input)(json).pipe(
    Effect.mapError(
      (error) =>
        new SchemaValidationFailed({
          taskType: type.name,
          which: "input",
          message: `stored input of ${type.name} does not match its Schema: ${describeParseError(error)}`
        })
    )
  )

/**
 * Encodes a handler's output with the contract's Schema.
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeOutput = <I, O, II, OI>(type: TaskType<I, O, II, OI>, output: O) =>
  Schema.encode(type.output)(output).pipe(
    Effect.mapError(
      (error) =>
        new SchemaValidationFailed({
          taskType: type.name,
          which: "output",
          message: `output of ${type.name} is invalid: ${describeParseError(error)}`
        })
    )
  )

/**
 * Decodes a stored output with the contract's Schema.
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeOutput = <I, O, II, OI>(type: TaskType<I, O, II, OI>, json: unknown) =>
  Schema.decodeUnknown(type.output)(json).pipe(
    Effect.mapError(
      (error) =>
        new SchemaValidationFailed({
          taskType: type.name,
          which: "output",
          message: `stored output of ${type.name} does not match its Schema: ${describeParseError(error)}`
        })
    )
  )
