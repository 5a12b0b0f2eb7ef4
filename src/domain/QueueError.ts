/**
 * Typed failures of the queue's own rules (as opposed to the storage port's).
 *
 * @module
 */
import { Schema } from "effect"

/**
 * An object in the bucket could not be decoded. Names the key and what is wrong; nothing is overwritten.
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedObject extends Schema.TaggedError<MalformedObject>()("MalformedObject", {
  key: Schema.String,
  message: Schema.String
}) {}

/**
 * An argument was refused before any write (a hostile id, a bad option). The message says what is allowed.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  argument: Schema.String,
  message: Schema.String
}) {}
