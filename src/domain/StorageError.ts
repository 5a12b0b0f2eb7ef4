/**
 * Typed failures of the {@link Storage} port. Every layer maps its backend's errors onto these,
 * so protocols decide by tag, never by message text.
 *
 * @module
 */
import { Schema } from "effect"

/**
 * A conditional write lost: `If-None-Match: *` on an existing key, or a stale / missing `If-Match` (412, or 409 ConditionalRequestConflict).
 *
 * @since 0.1.0
 * @category errors
 */
export class PreconditionFailed extends Schema.TaggedError<PreconditionFailed>()("PreconditionFailed", {
  key: Schema.String,
  message: Schema.String
}) {}

/**
 * A conditional write whose result is unknown: the server answered 5xx, or the connection broke
 * after the request was sent. The write may or may not have happened; re-read the object and decide.
 *
 * @since 0.1.0
 * @category errors
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  key: Schema.String,
  operation: Schema.String,
  message: Schema.String
}) {}

/**
 * The backend could not be reached or kept failing (5xx, SlowDown, network) after the layer's retries.
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageUnavailable extends Schema.TaggedError<StorageUnavailable>()("StorageUnavailable", {
  operation: Schema.String,
  key: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * The credentials were refused (403). Check the access key, the secret and the bucket policy.
 *
 * @since 0.1.0
 * @category errors
 */
export class AccessDenied extends Schema.TaggedError<AccessDenied>()("AccessDenied", {
  operation: Schema.String,
  key: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * The configured bucket does not exist (or the endpoint points at the wrong server).
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSuchBucket extends Schema.TaggedError<NoSuchBucket>()("NoSuchBucket", {
  bucket: Schema.String,
  message: Schema.String
}) {}

/**
 * The backend answered something this layer cannot interpret (a missing ETag, a malformed listing, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>()("InvalidResponse", {
  operation: Schema.String,
  key: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * The refusal of `deleteIfMatch` by a store that does not honour `If-Match` on DELETE (Ceph RGW):
 * nothing was sent, so the delete can never happen unconditionally.
 *
 * @since 0.1.0
 * @category utils
 */
export const conditionalDeleteUnsupported = (key: string): InvalidResponse =>
  new InvalidResponse({
    operation: "deleteIfMatch",
    key,
    message: `this store ignores If-Match on DELETE (capabilities.conditionalDelete is false): ${key} was not deleted; ` +
      "check the capability before asking for a conditional delete"
  })

/**
 * Why a versioned bucket cannot hold a queue where the server ignores conditional writes in it (Ceph RGW).
 *
 * @since 0.1.0
 * @category constants
 */
export const versionedWithoutConditionalWrites =
  "versioning is enabled on this bucket, and conditional writes are not enforced in it (this server ignores If-None-Match and If-Match on a versioned bucket): use a bucket without versioning for the queue"

/**
 * The bucket cannot hold a queue: checked when a connection opens, so a submit or a worker stops
 * with the reason instead of writing tasks that no worker can claim safely.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnusableBucket extends Schema.TaggedError<UnusableBucket>()("UnusableBucket", {
  bucket: Schema.String,
  message: Schema.String
}) {}

/**
 * Failures of any read or unconditional write.
 *
 * @since 0.1.0
 * @category errors
 */
export type StorageReadError = StorageUnavailable | AccessDenied | NoSuchBucket | InvalidResponse

/**
 * Failures of a conditional write: a read failure, a lost condition, or an ambiguous outcome.
 *
 * @since 0.1.0
 * @category errors
 */
export type StorageWriteError = StorageReadError | PreconditionFailed | OutcomeUnknown

/**
 * Every failure the Storage port can produce.
 *
 * @since 0.1.0
 * @category errors
 */
export type StorageError = StorageWriteError
