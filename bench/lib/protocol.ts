/**
 * The messages between the bench (parent) and its worker processes (children), over Node's IPC
 * channel, decoded with Schema on both sides.
 *
 * @module
 */
import { Schema } from "effect"

export const Counts = Schema.Struct({
  PUT: Schema.Number,
  GET: Schema.Number,
  HEAD: Schema.Number,
  LIST: Schema.Number,
  "LIST-VERSIONS": Schema.Number,
  DELETE: Schema.Number,
  deletedKeys: Schema.Number,
  total: Schema.Number
})

/** Parent → child. */
export const ToChild = Schema.Union(
  Schema.TaggedStruct("Go", {}),
  Schema.TaggedStruct("Stop", {}),
  Schema.TaggedStruct("ResetCounts", {}),
  Schema.TaggedStruct("ReadCounts", {})
)
export type ToChild = typeof ToChild.Type

/** Child → parent. */
export const ToParent = Schema.Union(
  Schema.TaggedStruct("Ready", {}),
  Schema.TaggedStruct("Progress", { completed: Schema.Number, lastAt: Schema.Number }),
  Schema.TaggedStruct("Started", { taskId: Schema.String, at: Schema.Number }),
  Schema.TaggedStruct("CountsNow", { counts: Counts, rss: Schema.Number }),
  Schema.TaggedStruct("Final", {
    completed: Schema.Number,
    completions: Schema.Array(Schema.Number),
    counts: Counts,
    rss: Schema.Number,
    peakRss: Schema.Number,
    heapUsed: Schema.Number,
    /** CPU time (user + system, µs) from `Go` to the last completion. */
    cpuMicros: Schema.Number,
    /** CPU time (µs, since `Go`) at each completion, in the order of `completions`. */
    completionCpuMicros: Schema.Array(Schema.Number),
    /** CPU time (user + system, µs) from the process's start to `Ready` (imports, layers built). */
    cpuToReadyMicros: Schema.Number,
    /** Claim CAS this process lost to another worker (buquet_claims_conflict_total). */
    lostClaims: Schema.Number
  })
)
export type ToParent = typeof ToParent.Type

/** What a worker process runs, passed in the `BENCH_CHILD` environment variable. */
export const ChildConfig = Schema.Struct({
  engine: Schema.Literal("buquet", "bullmq"),
  /** A serialised `Backend` (buquet only). */
  backend: Schema.optional(Schema.Unknown),
  redisPort: Schema.optional(Schema.Number),
  queueName: Schema.optional(Schema.String),
  concurrency: Schema.Number,
  /** Handler duration: 0 = the no-op handler. */
  handlerMillis: Schema.Number,
  /** Send a `Started` message from every handler (pickup latency). */
  reportStarts: Schema.Boolean,
  workerId: Schema.String,
  /** Run under plain `node`, without the `buquet` executable's heap flags (an embedded worker). */
  plainNode: Schema.optional(Schema.Boolean)
})
export type ChildConfig = typeof ChildConfig.Type

export const decodeToChild = Schema.decodeUnknownOption(ToChild)
export const decodeToParent = Schema.decodeUnknownOption(ToParent)
