/**
 * Shard and time-bucket arithmetic of the bucket format (design.md §5.1).
 *
 * @module
 */
import { Schema } from "effect"

/**
 * How many hex characters of the task id name its shard: 1–4 (16, 256, 4096 or 65,536 shards).
 *
 * @since 0.1.0
 * @category models
 */
export const ShardPrefixLen = Schema.Int.pipe(
  Schema.between(1, 4, { message: () => "shard prefix length must be an integer from 1 to 4" }),
  Schema.brand("ShardPrefixLen")
)

/**
 * A validated shard prefix length.
 *
 * @since 0.1.0
 * @category models
 */
export type ShardPrefixLen = typeof ShardPrefixLen.Type

/**
 * The default prefix length (16 shards), as in the reference.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultShardPrefixLen: ShardPrefixLen = ShardPrefixLen.make(1)

/**
 * The shard of a task id: the first `prefixLen` hex characters of the UUID without hyphens, lower-case.
 *
 * @since 0.1.0
 * @category utils
 */
export const shardOf = (taskId: string, prefixLen: number): string =>
  taskId.replace(/-/g, "").slice(0, prefixLen).toLowerCase()

/**
 * Every shard for a prefix length, in key (bytewise) order.
 *
 * @since 0.1.0
 * @category utils
 */
export const allShards = (prefixLen: number): ReadonlyArray<string> => {
  const count = 16 ** prefixLen
  const shards = new Array<string>(count)
  for (let i = 0; i < count; i++) shards[i] = i.toString(16).padStart(prefixLen, "0")
  return shards
}

/**
 * Whether `shard` is a shard name for the given prefix length.
 *
 * @since 0.1.0
 * @category guards
 */
export const isShard = (shard: string, prefixLen: number): boolean =>
  shard.length === prefixLen && /^[0-9a-f]+$/.test(shard)

/**
 * Seconds per time bucket: index keys are grouped by the epoch minute.
 *
 * @since 0.1.0
 * @category constants
 */
export const bucketSeconds = 60

/**
 * Width of a bucket number in keys: zero-padded so that keys sort by time.
 *
 * @since 0.1.0
 * @category constants
 */
export const bucketWidth = 10

/**
 * The time bucket of an instant (epoch milliseconds): `floor(epoch_seconds / 60)`.
 *
 * @since 0.1.0
 * @category utils
 */
export const bucketOf = (epochMillis: number): number => Math.floor(Math.floor(epochMillis / 1000) / bucketSeconds)

/**
 * A bucket number as it appears in keys: zero-padded to 10 digits (`0028421910`). Instants before
 * the epoch clamp to bucket 0: they are "already due" either way.
 *
 * @since 0.1.0
 * @category utils
 */
export const formatBucket = (bucket: number): string =>
  Math.max(0, Math.floor(bucket)).toString().padStart(bucketWidth, "0")

/**
 * The first instant (epoch milliseconds) of a bucket.
 *
 * @since 0.1.0
 * @category utils
 */
export const bucketStartMillis = (bucket: number): number => bucket * bucketSeconds * 1000
