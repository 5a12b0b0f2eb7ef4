/**
 * `connect()` and the Promise {@link Queue}: the Effect core behind one `ManagedRuntime` per
 * connection, with Promises, plain objects and `Date`s at the edge. `close()` stops the
 * connection's workers and releases every resource, so a program ends on its own.
 *
 * @module
 */
import { makeWorkflows } from "./workflows.js"
import type { Workflows } from "./workflows.js"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Duration, Effect, Either, Layer, Logger, LogLevel, ManagedRuntime, Option, Redacted } from "effect"
import * as Buquet from "../Buquet.js"
import type { BuquetServices } from "../Buquet.js"
import { InvalidConfig } from "../domain/ConfigFile.js"
import type { FlagNaming } from "../domain/ConfigFile.js"
import type { ScheduleSpec, ScheduleUpdate } from "../domain/ScheduleSpec.js"
import type { SubmitOptions as DomainSubmitOptions } from "../domain/SubmitOptions.js"
import type { FlowSpec } from "../domain/FlowRequest.js"
import { InvalidArgument } from "../domain/QueueError.js"
import { TaskJsonSchemas } from "../domain/TaskSchemas.js"
import * as ConfigLayer from "../layers/Config.js"
import * as WaitFor from "../programs/WaitFor.js"
import type { StorageSettings } from "../services/BuquetConfig.js"
import { Queue as QueueTag } from "../services/Queue.js"
import type { Scheduler } from "../services/Scheduler.js"
import { Scheduler as SchedulerTag } from "../services/Scheduler.js"
import { BuquetError, fromExit } from "./errors.js"
import * as T from "./types.js"
import { asTaskType } from "./handlers.js"
import type { FollowUpOptions } from "./handlers.js"
import { Worker } from "./worker.js"
import type { WorkerOptions } from "./worker.js"

/**
 * Everything a connection's runtime provides.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export type Services = BuquetServices

/**
 * Where and how to connect. Every field is optional: what is not given comes from the environment
 * (`S3_BUCKET`, `S3_ENDPOINT`, `S3_REGION`/`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `BUQUET_*`), the selected profile, `./.buquet.toml` and the user config
 * file; with no bucket anywhere, the embedded file store `./.buquet`. Given fields win over all of
 * those, like command-line flags.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  /** The S3 bucket. */
  readonly bucket?: string | undefined
  /** A custom S3 endpoint (MinIO, Ceph RGW, R2, …), e.g. `http://127.0.0.1:7480`; path-style addressing. */
  readonly endpoint?: string | undefined
  /** The S3 region (default `us-east-1`). */
  readonly region?: string | undefined
  /** Hex characters of a task id that name its shard, 1–4 (default 1 = 16 shards). Every client of a bucket must agree. */
  readonly shardPrefixLen?: number | undefined
  /** Store every key under this prefix, so several queues can share a bucket. */
  readonly keyPrefix?: string | undefined
  /** Static S3 credentials (default: the environment, then the AWS SDK's chain: profile, instance role, …). */
  readonly credentials?: {
    readonly accessKeyId: string
    readonly secretAccessKey: string
    readonly sessionToken?: string | undefined
  } | undefined
  /**
   * Where tasks live, as the CLI's `--storage` and `BUQUET_STORAGE` say it: `"s3://BUCKET"` (with
   * `endpoint`, `region`, `credentials` and `keyPrefix` from beside it), `"file:///abs/dir"` or
   * `"file://rel/dir"` (the embedded file store), or `"memory"` / `"memory:"`. Exclusive with
   * `bucket`, `directory` and `memory`; a URL of another form rejects with `InvalidConfig`.
   */
  readonly storage?: string | undefined
  /** Use the embedded file store in this directory instead of a bucket (safe for several processes on one machine). */
  readonly directory?: string | undefined
  /** Use a fresh in-memory store (tests, demos: nothing is kept, nothing is shared between processes). */
  readonly memory?: boolean | undefined
  /** A `[profiles.NAME]` of the config files (else `BUQUET_PROFILE`). */
  readonly profile?: string | undefined
  /** An extra config file read on top of `./.buquet.toml` and the user file (else `BUQUET_CONFIG`). */
  readonly configFile?: string | undefined
  /** The directory `./.buquet.toml` and `./.buquet` are relative to (default: the process's). */
  readonly cwd?: string | undefined
  /**
   * The embedded file store's folder when no store is configured at all (default `.buquet`,
   * relative to `cwd`). Any configured store (options, environment, config files) still wins.
   */
  readonly defaultDirectory?: string | undefined
  /** Do not print the one-line notice when the embedded default store is used. */
  readonly quiet?: boolean | undefined
  /** The least severe log level printed, on stderr (default `"warning"`; `"none"` prints nothing). */
  readonly logLevel?: "debug" | "info" | "warning" | "error" | "none" | undefined
  /**
   * Submit's check that some worker has ever registered a handler for the type (else
   * `BUQUET_TYPE_CHECK`, `[queue] type_check`): `"warn"` (default) logs a warning once per type,
   * `"strict"` rejects with a `BuquetError` whose `_tag` is `"UnhandledTaskType"`, `"off"` skips it.
   */
  readonly typeCheck?: "warn" | "strict" | "off" | undefined
}

/**
 * Options of one submit (all optional).
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions {
  /** Lease length of one attempt, in seconds (default 300): a handler running longer is interrupted and retried. */
  readonly timeoutSeconds?: number | undefined
  /** Retries after the first attempt (default 3). */
  readonly maxRetries?: number | undefined
  /** How many times a handler may reschedule the task (unlimited when unset). */
  readonly maxReschedules?: number | undefined
  /** 0 (default) to 9999: within a shard, higher priorities are claimed first. */
  readonly priority?: number | undefined
  /** Free-form labels stored with the task. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** Retry backoff; unset fields keep the defaults (1000 ms, ×2, 60000 ms cap, ±25 %). */
  readonly retryPolicy?: Partial<T.RetryPolicy> | undefined
  /** Do not run before this instant (server time). Exclusive with `delayMs`. */
  readonly scheduleAt?: Date | undefined
  /** Do not run before now + this many milliseconds. */
  readonly delayMs?: number | undefined
  /** Expire (never run) if not claimed within this many seconds. Exclusive with `expiresAt`. */
  readonly ttlSeconds?: number | undefined
  /** Expire (never run) if not claimed by this instant. */
  readonly expiresAt?: Date | undefined
  /** Submits with the same key (in one scope, within the key's TTL) make one task; all get it back. */
  readonly idempotencyKey?: string | undefined
  /** Where the key is unique: `"task_type"` (default), `"queue"` (across types) or a custom scope name. */
  readonly idempotencyScope?: string | undefined
  /** How long the key de-duplicates, in seconds (default 30 days). */
  readonly idempotencyTtlSeconds?: number | undefined
  /** This submit's type check, overriding the connection's `typeCheck`: `"warn"`, `"strict"` or `"off"`. */
  readonly typeCheck?: "warn" | "strict" | "off" | undefined
}

/**
 * One item of {@link Queue.submitMany}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitItem {
  readonly taskType: string
  readonly input: unknown
  readonly options?: SubmitOptions | undefined
}

/**
 * Options of bulk operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface BulkOptions {
  /** How many items run at once (default 16). */
  readonly concurrency?: number | undefined
}

/**
 * Filters and paging of {@link Queue.list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  /** Only tasks in this status (or these). Applied before the limit. */
  readonly status?: T.TaskStatus | ReadonlyArray<T.TaskStatus> | undefined
  /** Only tasks of this type. Applied before the limit. */
  readonly taskType?: string | undefined
  /** Only this shard (default: all). */
  readonly shard?: string | undefined
  /** Most tasks to return (default 100, at most 1000). */
  readonly limit?: number | undefined
  /** The `cursor` of the previous page. */
  readonly cursor?: string | undefined
}

/**
 * Who cancels and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface CancelOptions {
  /** Stored in `lastError` and in the task's history. */
  readonly reason?: string | undefined
  /** Stored in `cancelledBy`. */
  readonly cancelledBy?: string | undefined
}

export type { ScheduleSpec, ScheduleUpdate } from "../domain/ScheduleSpec.js"

/**
 * The cron schedules of a queue (`queue.schedules`). They fire while a worker runs with `scheduler: true`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Schedules {
  /** Creates a schedule (an existing id is an error); it first fires at its first cron instant after now. */
  readonly create: (spec: ScheduleSpec) => Promise<T.ScheduleWithRuns>
  /** A schedule, or undefined if there is none with this id. */
  readonly get: (id: string) => Promise<T.Schedule | undefined>
  /** A schedule's definition, last run and next run. */
  readonly status: (id: string) => Promise<T.ScheduleStatus>
  /** All schedules, by id. */
  readonly list: () => Promise<ReadonlyArray<T.Schedule>>
  /** Changes a schedule. */
  readonly update: (id: string, update: ScheduleUpdate) => Promise<T.ScheduleWithRuns>
  /** Enables a schedule: it fires from its first instant after now (the disabled period is not caught up). */
  readonly enable: (id: string) => Promise<T.Schedule>
  /** Disables a schedule. */
  readonly disable: (id: string) => Promise<T.Schedule>
  /** Deletes a schedule and its last-run record; false if there was none. */
  readonly delete: (id: string) => Promise<boolean>
  /** Submits the schedule's task now, outside the cron. */
  readonly trigger: (id: string) => Promise<T.Task>
  /** The schedule's last firing (the reference's `get_schedule_last_run`); undefined if it never fired. */
  readonly lastRun: (id: string) => Promise<T.LastRun | undefined>
}

/**
 * The published JSON Schemas of task types (`queue.schemas`): submit validates inputs against them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Schemas {
  /** Publishes (or replaces) a task type's JSON Schemas (draft 2020-12). */
  readonly publish: (taskType: string, schemas: { readonly input?: T.JsonSchema; readonly output?: T.JsonSchema }) => Promise<void>
  /** A task type's schemas, or undefined. */
  readonly get: (taskType: string) => Promise<{ readonly input?: T.JsonSchema; readonly output?: T.JsonSchema } | undefined>
  /** Task types with published schemas. */
  readonly list: () => Promise<ReadonlyArray<string>>
  /** Deletes a task type's schemas. */
  readonly delete: (taskType: string) => Promise<void>
}

const toSubmitOptions = (o: SubmitOptions | undefined): DomainSubmitOptions | undefined => o

/**
 * One node of a flow (`queue.flow`): its task type as `name` (BullMQ's spelling) or `type` (a
 * plain name or a typed contract), its input and options (a follow-up's: no idempotency),
 * whether its failure fails its parent at once, and its children.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowJob {
  /** The task type (BullMQ's `name`). Give this or `type`. */
  readonly name?: string | undefined
  /** The task type, or a typed contract whose Schema encodes the input. Give this or `name`. */
  readonly type?: string | T.TypedTaskType<unknown, unknown> | undefined
  readonly input?: unknown
  readonly options?: FollowUpOptions | undefined
  /**
   * When this child ends failed, cancelled or expired, its parent fails at once (it never runs).
   * Default: the parent runs once every child has ended and sees the failure in its results.
   */
  readonly failParentOnFailure?: boolean | undefined
  readonly children?: ReadonlyArray<FlowJob> | undefined
}

/**
 * The ids of a created flow's nodes (the shape of the request).
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowNodeIds {
  readonly id: string
  readonly taskType: string
  readonly children: ReadonlyArray<FlowNodeIds>
}

/**
 * A created flow: the root task as stored, and the ids of every node.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlowCreated extends FlowNodeIds {
  readonly task: T.Task
}

const toFlowSpec = (node: FlowJob, path: string): Effect.Effect<FlowSpec, InvalidArgument> =>
  Effect.gen(function*() {
    if (node === null || typeof node !== "object") {
      return yield* new InvalidArgument({ argument: path, message: `${path} must be an object { name, input, children }` })
    }
    const given = [node.name, node.type].filter((t) => t !== undefined)
    if (given.length !== 1) {
      return yield* new InvalidArgument({ argument: path, message: `${path} needs its task type as exactly one of name or type` })
    }
    const type = node.name ?? node.type!
    const children = node.children === undefined ? [] : node.children
    if (!Array.isArray(children)) return yield* new InvalidArgument({ argument: `${path}.children`, message: `${path}.children must be an array` })
    const specs = yield* Effect.forEach(children as ReadonlyArray<FlowJob>, (c, i) => toFlowSpec(c, `${path}.children[${i}]`))
    return {
      type: typeof type === "string" ? type : asTaskType(type),
      input: node.input,
      ...(node.options !== undefined ? { options: node.options } : {}),
      ...(node.failParentOnFailure !== undefined ? { failParentOnFailure: node.failParentOnFailure } : {}),
      ...(specs.length > 0 ? { children: specs } : {})
    } satisfies FlowSpec
  })

const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.stringLogger))

const logLevels = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

/** The options that name where tasks live besides `storage`, as ConnectOptions spells them. */
const otherStores = ["bucket", "directory", "memory"] as const

/** The connect options as the configuration's flags (setting path → text), or why they conflict. */
const connectFlags = (o: ConnectOptions): Either.Either<Map<string, string>, InvalidConfig> => {
  const clash = o.storage === undefined ? undefined : otherStores.find((k) => k === "memory" ? o.memory === true : o[k] !== undefined)
  if (clash !== undefined) {
    return Either.left(new InvalidConfig({
      source: "connect()",
      key: "storage",
      message: `connect(): give storage or ${clash}, not both: each says where tasks live`
    }))
  }
  const flags = new Map<string, string>()
  if (o.bucket !== undefined) flags.set("bucket", o.bucket)
  if (o.endpoint !== undefined) flags.set("endpoint", o.endpoint)
  if (o.region !== undefined) flags.set("region", o.region)
  if (o.keyPrefix !== undefined) flags.set("key_prefix", o.keyPrefix)
  if (o.shardPrefixLen !== undefined) flags.set("queue.shard_prefix_len", String(o.shardPrefixLen))
  if (o.typeCheck !== undefined) flags.set("queue.type_check", o.typeCheck)
  if (o.storage !== undefined) flags.set("storage", o.storage)
  else if (o.memory === true) flags.set("storage", "memory")
  else if (o.directory !== undefined) flags.set("storage", `file://${o.directory}`)
  else if (o.bucket !== undefined) flags.set("storage", `s3://${o.bucket}`)
  return Either.right(flags)
}

/** Settings given to connect() are named as its options in messages (`connect({ keyPrefix })`). */
const connectNaming = (o: ConnectOptions): FlagNaming => ({
  source: "connect()",
  name: (path) => {
    const option = path === "storage"
      ? (o.storage !== undefined ? "storage" : o.directory !== undefined ? "directory" : "bucket")
      : ({ key_prefix: "keyPrefix", "queue.shard_prefix_len": "shardPrefixLen" } as Record<string, string>)[path] ?? path
    return `connect({ ${option} })`
  }
})

const withCredentials = (storage: StorageSettings, o: ConnectOptions): StorageSettings =>
  storage._tag === "S3" && o.credentials !== undefined
    ? { ...storage, credentials: { accessKeyId: o.credentials.accessKeyId, secretAccessKey: Redacted.make(o.credentials.secretAccessKey) } }
    : storage

/** The layer of one connection: configuration resolved once, then the Buquet stack on it. */
const connectionLayer = (options: ConnectOptions): Layer.Layer<Services, unknown> => {
  const stack = Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* ConfigLayer.resolveConfig({
        flags: yield* connectFlags(options),
        flagNaming: connectNaming(options),
        profile: options.profile,
        configFile: options.configFile,
        cwd: options.cwd,
        defaultDirectory: options.defaultDirectory
      }).pipe(Effect.provide(NodeFileSystem.layer))
      if (config.storage._tag === "File" && config.storage.implicit && options.quiet !== true) {
        yield* Effect.sync(() =>
          process.stderr.write(
            `buquet: no bucket configured; using the embedded file store ${config.storage._tag === "File" ? config.storage.directory : ""} (set S3_BUCKET or pass { bucket } to use a bucket)\n`
          )
        )
      }
      const storage = withCredentials(config.storage, options)
      const base = storage._tag === "S3" && options.credentials?.sessionToken !== undefined
        ? Buquet.layer({
          bucket: storage.bucket,
          endpoint: storage.endpoint,
          region: storage.region,
          keyPrefix: storage.keyPrefix,
          shardPrefixLen: config.shardPrefixLen,
          credentials: options.credentials,
          queue: { typeCheck: config.typeCheck }
        })
        : Buquet.layerFromSettings(storage, { shardPrefixLen: config.shardPrefixLen, queue: { typeCheck: config.typeCheck } })
      return base
    })
  )
  // a library logs to stderr: the program's stdout is its own (`node export.js | jq`)
  return Layer.provide(stack, Layer.merge(Logger.minimumLogLevel(logLevels[options.logLevel ?? "warning"]), stderrLogger))
}

/**
 * Connects to a queue. Resolves once the store is reachable (an unreachable bucket or a bad
 * setting rejects with a {@link BuquetError} that says what to fix).
 *
 * ```ts
 * const queue = await connect()                                   // env, config files, else ./.buquet
 * const queue = await connect({ bucket: "jobs", endpoint: "http://127.0.0.1:7480" })
 * const queue = await connect({ directory: "/tmp/my-queue" })     // the embedded file store
 * const queue = await connect({ storage: "memory:" })             // or "s3://jobs", "file:///tmp/my-queue", as --storage takes
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = async (options: ConnectOptions = {}): Promise<Queue> => {
  const runtime = ManagedRuntime.make(connectionLayer(options))
  const exit = await runtime.runPromiseExit(Effect.void)
  if (exit._tag === "Failure") {
    await runtime.dispose()
    fromExit(exit)
  }
  return Queue.make(runtime)
}

/**
 * A connection to a queue, from {@link connect}. Every method returns a Promise; failures reject
 * with a {@link BuquetError}. Call {@link Queue.close} when done.
 *
 * @since 0.1.0
 * @category facade
 */
export class Queue {
  /** The cron schedules. */
  readonly schedules: Schedules
  /** The published JSON Schemas of task types. */
  readonly schemas: Schemas
  /** The DAG workflow runs: start, get, list, signal, cancel, pause, resume, sweep. */
  readonly workflows: Workflows
  readonly #runtime: ManagedRuntime.ManagedRuntime<Services, unknown>
  readonly #workers = new Set<Worker>()
  #closed: Promise<void> | undefined

  /**
   * Use {@link connect}.
   *
   * @internal
   */
  static make(runtime: ManagedRuntime.ManagedRuntime<Services, unknown>): Queue {
    return new Queue(runtime)
  }

  // private, and the factory internal: the declarations name no Effect type
  private constructor(runtime: ManagedRuntime.ManagedRuntime<Services, unknown>) {
    this.#runtime = runtime
    const withScheduler = <A, E>(f: (s: Scheduler["Type"]) => Effect.Effect<A, E>) => this.run(Effect.flatMap(SchedulerTag, f))
    this.schedules = {
      create: (spec) => withScheduler((s) => s.create(spec)).then(T.fromScheduleWithRuns),
      get: (id) => withScheduler((s) => s.get(id)).then((o) => Option.getOrUndefined(Option.map(o, T.fromSchedule))),
      status: (id) => withScheduler((s) => s.status(id)).then(T.fromScheduleStatus),
      list: () => withScheduler((s) => s.list).then((l) => l.map(T.fromSchedule)),
      update: (id, update) => withScheduler((s) => s.update(id, update)).then(T.fromScheduleWithRuns),
      enable: (id) => withScheduler((s) => s.enable(id)).then(T.fromSchedule),
      disable: (id) => withScheduler((s) => s.disable(id)).then(T.fromSchedule),
      delete: (id) => withScheduler((s) => s.delete(id)),
      trigger: (id) => withScheduler((s) => s.triggerNow(id)).then(T.fromTask),
      lastRun: (id) => withScheduler((s) => s.lastRun(id)).then((o) => Option.getOrUndefined(Option.map(o, T.fromLastRun)))
    }
    this.workflows = makeWorkflows((effect) => this.run(effect))
    this.schemas = {
      publish: (taskType, schemas) => this.withQueue((q) => q.publishSchema(taskType, new TaskJsonSchemas(schemas))),
      get: (taskType) =>
        this.withQueue((q) => q.getSchema(taskType)).then((o) =>
          Option.getOrUndefined(
            Option.map(o, (s) => ({ ...(s.input === undefined ? {} : { input: s.input }), ...(s.output === undefined ? {} : { output: s.output }) }))
          )
        ),
      list: () => this.withQueue((q) => q.listSchemas),
      delete: (taskType) => this.withQueue((q) => q.deleteSchema(taskType))
    }
  }

  /**
   * Runs an Effect of the core on this connection's runtime: the value, or a rejected
   * {@link BuquetError}. Internal: Effect code uses the `buquet` export's layers instead.
   *
   * @internal
   */
  run<A, E>(effect: Effect.Effect<A, E, Services>): Promise<A> {
    if (this.#closed !== undefined) return Promise.reject(new BuquetError("QueueClosed", "the queue is closed; connect() again"))
    return this.#runtime.runPromiseExit(effect).then(fromExit)
  }

  private withQueue<A, E>(f: (q: QueueTag["Type"]) => Effect.Effect<A, E>): Promise<A> {
    return this.run(Effect.flatMap(QueueTag, f))
  }

  /**
   * Submits a task: a plain task type with JSON input, or a typed contract (`TaskType.make`) whose
   * input is type-checked and encoded by its Schema. Resolves once the task is durably stored.
   *
   * ```ts
   * const task = await queue.submit("send_email", { to: "a@example.com" }, { maxRetries: 5 })
   * ```
   */
  submit<I, O>(type: T.TypedTaskType<I, O>, input: I, options?: SubmitOptions): Promise<T.Task>
  /** A plain task type; `I` describes the JSON input (not checked at run time): `submit<{ to: string }>("send_email", …)`. */
  submit<I = unknown>(taskType: string, input: I, options?: SubmitOptions): Promise<T.Task>
  submit(type: string | T.TypedTaskType<unknown, unknown>, input: unknown, options?: SubmitOptions): Promise<T.Task> {
    return this.withQueue((q) =>
      typeof type === "string" ? q.submit(type, input, toSubmitOptions(options)) : q.submit(asTaskType(type), input, toSubmitOptions(options))
    ).then(T.fromTask)
  }

  /**
   * Creates a flow (BullMQ's `FlowProducer.add`): the root task waits — not claimable — until its
   * children have all ended (completed, failed, cancelled or expired), then runs and reads their
   * results with `ctx.childrenResults()`. Children may have children. Each node names its task
   * type with `name` (BullMQ's spelling) or `type` (also a typed contract). Resolves with the root
   * task and the ids of every node once the root and its children are stored.
   *
   * ```ts
   * const flow = await queue.flow({
   *   name: "report", input: { month: 5 },
   *   children: [{ name: "fetch", input: { part: 1 } }, { name: "fetch", input: { part: 2 }, failParentOnFailure: true }]
   * })
   * flow.id; flow.children[0].id
   * ```
   */
  flow(node: FlowJob): Promise<FlowCreated> {
    return this.withQueue((q) => Effect.flatMap(toFlowSpec(node, "flow"), (spec) => q.flow(spec))).then((created) => ({
      id: created.id,
      taskType: created.taskType,
      children: created.children,
      task: T.fromTask(created.task)
    }))
  }

  /**
   * Submits many tasks with bounded concurrency; one result per item, in input order (a failed
   * item does not stop the others, and is reported, never hidden).
   *
   * ```ts
   * const results = await queue.submitMany([{ taskType: "resize", input: { id: 1 } }, …])
   * const failed = results.filter((r) => !r.ok)
   * ```
   */
  submitMany<I, O>(
    type: T.TypedTaskType<I, O>,
    inputs: Iterable<I>,
    options?: SubmitOptions & BulkOptions
  ): Promise<ReadonlyArray<T.SubmitManyResult>>
  submitMany(items: Iterable<SubmitItem>, options?: BulkOptions): Promise<ReadonlyArray<T.SubmitManyResult>>
  submitMany(
    first: Iterable<SubmitItem> | T.TypedTaskType<unknown, unknown>,
    second?: Iterable<unknown> | BulkOptions,
    third?: SubmitOptions & BulkOptions
  ): Promise<ReadonlyArray<T.SubmitManyResult>> {
    return this.withQueue((q) => {
      if (Symbol.iterator in first) {
        const bulk = (second ?? {}) as BulkOptions
        return q.submitMany([...first].map((i) => ({ ...i, options: toSubmitOptions(i.options) })), bulk)
      }
      return q.submitMany(asTaskType(first), (second ?? []) as Iterable<unknown>, third)
    }).then((rs) => rs.map(T.fromSubmitMany))
  }

  /**
   * Resolves with the task once it has finished (`completed`, `failed`, `cancelled`, `expired` or
   * `archived`; look at `status`), like BullMQ's `waitUntilFinished`. It re-reads the one task,
   * at first every 50 ms and then at most once a second. Rejects with a `BuquetError` whose `_tag`
   * is `"WaitTimeout"` when `timeoutMs` passes first (the task is left as it is), or
   * `"TaskNotFound"` when there is no such task.
   *
   * ```ts
   * const task = await queue.submit("resize", { id: 1 })
   * const done = await queue.waitFor(task.id, { timeoutMs: 30_000 })
   * if (done.status === "completed") console.log(done.output)
   * ```
   */
  waitFor(taskId: string, options: { readonly timeoutMs?: number | undefined } = {}): Promise<T.Task> {
    return this.run(WaitFor.waitFor(taskId, { timeout: options.timeoutMs === undefined ? undefined : Duration.millis(options.timeoutMs) }))
      .then(T.fromTask)
  }

  /** Reads a task; undefined if it does not exist. */
  get(taskId: string): Promise<T.Task | undefined> {
    return this.withQueue((q) => q.get(taskId)).then((o) => Option.getOrUndefined(Option.map(o, T.fromTask)))
  }

  /** Lists tasks (filters applied before the limit), one page at a time: pass `cursor` back for the next. */
  list(options: ListOptions = {}): Promise<T.TaskPage> {
    return this.withQueue((q) => q.list(options)).then(T.fromTaskPage)
  }

  /**
   * Ids of the tasks of a shard that are due now, from the ready index (the reference's
   * `list_ready(shard, limit=100)`), highest priority first; every shard when `shard` is undefined.
   */
  listReady(shard?: string, options: { readonly limit?: number | undefined } = {}): Promise<ReadonlyArray<string>> {
    return this.withQueue((q) => q.listReady({ shard, limit: options.limit ?? 100 })).then((entries) => entries.map((e) => e.taskId))
  }

  /** A task's transition log, plus its S3 versions where the bucket's versioning works. */
  history(taskId: string): Promise<T.TaskHistory> {
    return this.withQueue((q) => q.history(taskId)).then(T.fromHistory)
  }

  /** The task's input, loaded from `payloads/` when it was offloaded (large inputs). */
  loadInput(task: T.Task): Promise<unknown> {
    return this.withQueue((q) => Effect.flatMap(this.coreTask(q, task), q.loadInput))
  }

  /** The task's output, loaded from `payloads/` when it was offloaded (large outputs). */
  loadOutput(task: T.Task): Promise<unknown> {
    return this.withQueue((q) => Effect.flatMap(this.coreTask(q, task), q.loadOutput))
  }

  private coreTask(q: QueueTag["Type"], task: T.Task) {
    const origin = T.originOf(task)
    if (origin !== undefined) return Effect.succeed(origin)
    return Effect.flatMap(q.get(task.id), (o) =>
      Option.isSome(o) ? Effect.succeed(o.value) : Effect.fail(new BuquetError("TaskNotFound", `task ${task.id} does not exist`)))
  }

  /**
   * Cancels a task: pending → `cancelled`; running → `cancel_requested` (its worker aborts the
   * handler's `ctx.signal` and records `cancelled`); otherwise `already_terminal` or `not_found`.
   */
  cancel(taskId: string, options?: CancelOptions): Promise<T.CancelResult> {
    return this.withQueue((q) => q.cancel(taskId, options)).then(T.fromCancelResult)
  }

  /** Cancels many tasks; one result per id, in order. */
  cancelMany(taskIds: Iterable<string>, options?: CancelOptions & BulkOptions): Promise<ReadonlyArray<T.CancelManyResult>> {
    return this.withQueue((q) => q.cancelMany(taskIds, options)).then((rs) => rs.map(T.fromCancelMany))
  }

  /** Cancels every unfinished task of a type (scans all shards); one result per task found. */
  cancelByType(taskType: string, options?: CancelOptions & BulkOptions): Promise<ReadonlyArray<T.CancelManyResult>> {
    return this.withQueue((q) => q.cancelByType(taskType, options)).then((rs) => rs.map(T.fromCancelMany))
  }

  /**
   * Replays a failed, cancelled or expired task with a fresh budget (counters reset), available now
   * (a cancelled or expired task replayed in the minute it was last due: at the next minute, as
   * the DELETE of its old ready marker may still land and the new marker must not have its key).
   */
  replay(taskId: string): Promise<T.Task> {
    return this.withQueue((q) => q.replay(taskId)).then(T.fromTask)
  }

  /** Archives a finished task. */
  archive(taskId: string): Promise<T.Task> {
    return this.withQueue((q) => q.archive(taskId)).then(T.fromTask)
  }

  /** Deletes a task with its markers and payloads; false if it did not exist. */
  delete(taskId: string): Promise<boolean> {
    return this.withQueue((q) => q.delete(taskId))
  }

  /** The bucket's time (what every availability, lease and TTL decision uses). */
  now(): Promise<Date> {
    return this.withQueue((q) => q.now).then((dt) => new Date(dt.epochMillis))
  }

  /** Pauses claiming of one task type, or of everything; workers stop claiming within one poll. Submits still work. */
  pause(taskType?: string): Promise<T.PauseState> {
    return this.withQueue((q) => q.pause(taskType)).then(T.fromPauseState)
  }

  /** Resumes one task type, or everything. */
  resume(taskType?: string): Promise<T.PauseState> {
    return this.withQueue((q) => q.resume(taskType)).then(T.fromPauseState)
  }

  /** The current pause switches. */
  pauseState(): Promise<T.PauseState> {
    return this.withQueue((q) => q.pauseState).then(T.fromPauseState)
  }

  /**
   * A worker on this connection. Register handlers with {@link Worker.task}, then
   * `await worker.run()`.
   *
   * ```ts
   * const worker = queue.worker({ concurrency: 4 })
   * worker.task("send_email", async (input, ctx) => ({ sent: true }))
   * await worker.run()      // until worker.stop(), SIGINT or SIGTERM
   * ```
   */
  worker(options: WorkerOptions = {}): Worker {
    const worker = Worker.make(
      options,
      (effect) => this.run(effect),
      () => this.#workers.delete(worker)
    )
    this.#workers.add(worker)
    return worker
  }

  /**
   * Stops this connection's running workers (gracefully) and releases every resource: after it
   * resolves, nothing of buquet keeps the process alive. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = (async () => {
        await Promise.allSettled([...this.#workers].map((w) => w.stop()))
        await this.#runtime.dispose()
      })()
    }
    return this.#closed
  }
}
