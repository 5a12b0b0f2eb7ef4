/**
 * Decoding and encoding of the JSON objects in the bucket. A malformed object yields a
 * {@link MalformedObject} naming its key and the offending field, never a crash and never a
 * silent default.
 *
 * @module
 */
import { Effect, ParseResult, Schema } from "effect"
import { InvalidArgument, MalformedObject } from "./QueueError.js"

const textDecoder = new TextDecoder("utf-8", { fatal: true })
const textEncoder = new TextEncoder()

/** Describes a parse error as `field "a.b": message` for the first issue (and how many more there are). */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return error.message
  const where = first.path.length === 0 ? "the document" : `field "${first.path.join(".")}"`
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? "s" : ""})` : ""
  return `${where}: ${first.message}${more}`
}

/** Decodes the UTF-8 JSON body of the object at `key` with `schema`. */
export const decodeObject = <A, I>(schema: Schema.Schema<A, I>, key: string, body: Uint8Array) =>
  Effect.suspend(() => {
    let text: string
    let json: unknown
    try {
      text = textDecoder.decode(body)
    } catch {
      return Effect.fail(new MalformedObject({ key, message: `${key} is not UTF-8 text` }))
    }
    try {
      json = JSON.parse(text)
    } catch (e) {
      return Effect.fail(new MalformedObject({ key, message: `${key} is not valid JSON: ${(e as Error).message}` }))
    }
    return Schema.decodeUnknown(schema)(json).pipe(
      Effect.mapError((error) => new MalformedObject({ key, message: `${key} is malformed: ${describeParseError(error)}` }))
    )
  })

/** Encodes a value with `schema` as compact UTF-8 JSON. Encoding our own models cannot fail; a failure is a defect. */
export const encodeObject = <A, I>(schema: Schema.Schema<A, I>, value: A): Uint8Array =>
  textEncoder.encode(JSON.stringify(Schema.encodeSync(schema)(value)))

/**
 * A value as plain JSON: what storing it and reading it back gives (`undefined` becomes `null`, a
 * Date its ISO string). A value with no JSON form (a BigInt, a cycle, a function) is an `InvalidArgument`
 * naming `argument`, with `what` (default: `argument`) in its message.
 */
export const toPlainJson = (argument: string, value: unknown, what: string = argument): Effect.Effect<unknown, InvalidArgument> =>
  Effect.try({
    // a function (no JSON form) stringifies to undefined, which JSON.parse refuses
    try: () => JSON.parse(JSON.stringify(value === undefined ? null : value) as string) as unknown,
    catch: (e) => new InvalidArgument({ argument, message: `${what} must be JSON-serialisable: ${(e as Error).message}` })
  })

/** UTF-8 bytes of a string. */
export const utf8 = (text: string): Uint8Array => textEncoder.encode(text)
