/**
 * The Promise {@link Worker}: register `async (input, ctx) => output` handlers, then
 * `await worker.run()` until `worker.stop()`, SIGINT or SIGTERM. It runs the Effect worker (and,
 * on request, the embedded monitor and scheduler loop) on its connection's runtime; stopping is
 * graceful: no new claims, running handlers finish within the grace period, then their signals
 * are aborted and their tasks given back without consuming a retry.
 *
 * @module
 */
import { Deferred, Duration, Effect } from "effect"
import type { BuquetServices as Services } from "../Buquet.js"
import type { Scope } from "effect"
import * as ConfigModel from "../domain/ConfigModel.js"
import type * as Monitor from "../programs/Monitor.js"
import * as EffectWorker from "../programs/Worker.js"
import type { HandlerDefinition } from "../programs/worker/Handler.js"
import type { PollingOptions as EffectPolling } from "../programs/worker/Polling.js"
import { awaitSignal } from "../programs/worker/Shutdown.js"
import { Queue as QueueTag } from "../services/Queue.js"
import { BuquetError } from "./errors.js"
import { asTaskType, definitionsFromModule, toHandlerDefinition } from "./handlers.js"
import type { EffectHandler, Handler, HandlerMap, HandlerOptions } from "./handlers.js"
import { fromTask } from "./types.js"
import { workflowHandlers } from "./workflows.js"
import type { Workflow } from "./workflows.js"
import type { Task, TypedTaskType } from "./types.js"

/**
 * How a worker paces its polls of the bucket. `adaptive` (the default: 100 ms after work, doubling
 * to 5000 ms while idle, jittered) or `fixed`.
 *
 * @since 0.1.0
 * @category models
 */
export type PollingOptions =
  | {
    readonly strategy: "adaptive"
    /** First delay after an empty poll (default 100). */
    readonly minIntervalMs?: number | undefined
    /** Cap (default 5000). */
    readonly maxIntervalMs?: number | undefined
    /** Growth per empty poll (default 2). */
    readonly multiplier?: number | undefined
    /** Randomise each delay by ±20 % (default true). */
    readonly jitter?: boolean | undefined
  }
  | {
    readonly strategy: "fixed"
    /** The delay between polls. */
    readonly intervalMs: number
  }

/**
 * Shard leasing, for large fleets (the config file's `[worker.shard_leasing]`): each worker owns a
 * share of the queue's shards through lease objects (`shard-leases/{shard}.json`) and polls only
 * those, so N workers do not all list every shard. A worker also polls, without a lease, the shards
 * whose owner cannot run one of its task types or that no one owns because the caps are too small.
 * The limits are the config file's: `leaseTtlMs` 2000–3600000, `renewIntervalMs` at least 1000
 * and below `leaseTtlMs`, `shardsPerWorker` a positive integer; anything else makes
 * `worker.run()` reject with a `BuquetError` (`"InvalidWorkerOptions"`).
 *
 * ```ts
 * queue.worker({ shardLeasing: { shardsPerWorker: 4 } })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ShardLeasingOptions {
  /** Most shards this worker owns (default: its fair share, the shards divided by the live workers). */
  readonly shardsPerWorker?: number | undefined
  /** Lease lifetime without renewal, in ms (default 30000): a crashed worker's shards are owned again after it. */
  readonly leaseTtlMs?: number | undefined
  /** How often the leases are renewed and the split recomputed, in ms (default a third of `leaseTtlMs`). */
  readonly renewIntervalMs?: number | undefined
}

/**
 * Settings of the monitor a worker embeds: the config file's `[monitor]` section, durations in
 * milliseconds, with its limits (a value outside them makes `worker.run()` reject with an
 * `InvalidWorkerOptions` error). Each unset one keeps its default.
 *
 * ```ts
 * queue.worker({ monitor: { checkIntervalMs: 120_000, sweepIntervalMs: 0 } })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface MonitorSettings {
  /**
   * Lease-recovery period, in ms, 1000–86400000 (default 30000); also the continuous sweeper's step period.
   *
   * @since 0.1.0
   */
  readonly checkIntervalMs?: number | undefined
  /**
   * Time between the starts of two full sweep passes (index repair), in ms: 0 turns the sweeper off,
   * else 1000–604800000 (default 300000).
   *
   * @since 0.1.0
   */
  readonly sweepIntervalMs?: number | undefined
  /**
   * LIST page size of the `leases/` walk of lease recovery, 1–1000 (default 100).
   *
   * @since 0.1.0
   */
  readonly maxTasksPerScan?: number | undefined
  /**
   * The sweeper's LIST page size and task objects per continuous step, 1–1000 (default 1000).
   *
   * @since 0.1.0
   */
  readonly maxObjectsPerSweep?: number | undefined
  /**
   * `"continuous"` (default): a bounded sweep step per `checkIntervalMs`; `"on_demand"`: a whole
   * pass per `sweepIntervalMs`.
   *
   * @since 0.1.0
   */
  readonly sweepMode?: "continuous" | "on_demand" | undefined
  /**
   * A worker without a heartbeat for this long is reported stale, in ms, 1000–86399000 (default
   * 180000); keep it above twice the workers' idle heartbeat.
   *
   * @since 0.1.0
   */
  readonly workerHealthThresholdMs?: number | undefined
  /**
   * Lease-recovery period while the bucket is quiet (nothing running), in ms: 0 turns the quiet
   * mode off (the monitor keeps `checkIntervalMs`), else 1000–86400000 (default 600000).
   *
   * @since 0.1.0
   */
  readonly quietCheckIntervalMs?: number | undefined
  /**
   * Opt-in retention (default off): finished tasks whose last change is older than `olderThanDays`
   * (1–36500) are deleted (with markers and payloads) or archived.
   *
   * @since 0.1.0
   */
  readonly retention?: { readonly olderThanDays: number; readonly action: "delete" | "archive" } | undefined
}

/**
 * Options of a worker; every one has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  /** The worker's id (default: a fresh UUID); names its record `workers/{id}.json`. */
  readonly id?: string | undefined
  /** The shards to poll (default all), e.g. `["0", "1"]`. */
  readonly shards?: ReadonlyArray<string> | undefined
  /** How many tasks run at once (default 1). */
  readonly concurrency?: number | undefined
  /** Poll pacing (default adaptive 100 → 5000 ms). */
  readonly polling?: PollingOptions | undefined
  /** Idle workers wait on a cheap wake-up object instead of listing the bucket (default true). */
  readonly wakeUp?: boolean | undefined
  /** How long running handlers may finish after a stop before they are aborted and their tasks given back (default 30000). */
  readonly shutdownGraceMs?: number | undefined
  /** Stop after claiming this many tasks (and finishing them). */
  readonly maxTasks?: number | undefined
  /**
   * Run the embedded monitor (lease recovery, index repair; one active per bucket by leader
   * election). Default true. An object runs it with those settings (the config file's `[monitor]`
   * section, in milliseconds; each unset one keeps its default), e.g. opt-in retention or a slower
   * lease-recovery check.
   */
  readonly monitor?: boolean | MonitorSettings | undefined
  /** Run the cron scheduler loop (one active per bucket by leader election). Default false. */
  readonly scheduler?: boolean | undefined
  /** Stop gracefully on these signals (default `["SIGINT", "SIGTERM"]`; `false` for none). */
  readonly signals?: false | ReadonlyArray<NodeJS.Signals> | undefined
  /** How often the worker checks its cancel signal while tasks run, in ms (default 2000; one HEAD however many run). */
  readonly cancelCheckIntervalMs?: number | undefined
  /** Poll only the shards this worker leases, so a fleet splits them (default false); `true` takes the defaults. */
  readonly shardLeasing?: boolean | ShardLeasingOptions | undefined
  /** Keys per LIST of the ready index when looking for work, 1–1000 (default 1000; a LIST costs the same whatever it returns). */
  readonly readyPageSize?: number | undefined
  /** How often the worker rewrites its record `workers/{id}.json`, in ms, 1000–3600000 (default 10000 while tasks run, 60000 while idle). */
  readonly heartbeat?: { readonly busyMs?: number | undefined; readonly idleMs?: number | undefined } | undefined
}

/**
 * What a worker did with a task, for {@link Worker.on}.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerEventType =
  | "claimed"
  | "completed"
  | "retried"
  | "rescheduled"
  | "failed"
  | "cancelled"
  | "released"
  | "leaseLost"
  | "progress"

/**
 * One event of a worker.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerEvent {
  readonly type: WorkerEventType
  readonly taskId: string
  /** The task after the change (absent for `leaseLost`). */
  readonly task?: Task | undefined
  /** The failure's message (`retried`, `failed`) or the reason (`leaseLost`). */
  readonly error?: string | undefined
  /** How long the handler ran (`completed`). */
  readonly durationMs?: number | undefined
  /** The value the handler reported with `ctx.progress` (`progress`). */
  readonly progress?: unknown
}

/**
 * Counters of a running worker.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerStats {
  readonly claimed: number
  readonly completed: number
  readonly failed: number
  readonly retried: number
  readonly rescheduled: number
  readonly cancelled: number
  readonly released: number
  /** Ids of the tasks running now. */
  readonly running: ReadonlyArray<string>
}

type Runner = <A, E>(effect: Effect.Effect<A, E, Services>) => Promise<A>

const toPolling = (p: PollingOptions | undefined): EffectPolling | undefined => {
  if (p === undefined) return undefined
  if (p.strategy === "fixed") return { _tag: "Fixed", interval: Duration.millis(p.intervalMs) }
  return {
    _tag: "Adaptive",
    ...(p.minIntervalMs === undefined ? {} : { min: Duration.millis(p.minIntervalMs) }),
    ...(p.maxIntervalMs === undefined ? {} : { max: Duration.millis(p.maxIntervalMs) }),
    ...(p.multiplier === undefined ? {} : { factor: p.multiplier }),
    ...(p.jitter === undefined ? {} : { jitter: p.jitter })
  }
}

/**
 * The Effect monitor's options from the Promise `monitor` option, as the CLI maps `[monitor]`
 * (cli/options.ts `monitorOptions`, which the Promise floor cannot import): 0 turns the sweeper
 * and the quiet mode off; an unset setting is left out, so the monitor's default applies.
 *
 * @internal
 */
export const monitorOption = (monitor: WorkerOptions["monitor"]): false | Monitor.MonitorOptions => {
  if (monitor === false) return false
  if (typeof monitor !== "object") return {}
  const m = monitor
  return {
    ...(m.checkIntervalMs === undefined ? {} : { checkInterval: Duration.millis(m.checkIntervalMs) }),
    ...(m.sweepIntervalMs === undefined ? {} : { sweepInterval: Duration.millis(m.sweepIntervalMs) }),
    ...(m.maxTasksPerScan === undefined ? {} : { maxTasksPerScan: m.maxTasksPerScan }),
    ...(m.maxObjectsPerSweep === undefined ? {} : { maxObjectsPerSweep: m.maxObjectsPerSweep }),
    ...(m.sweepMode === undefined ? {} : { sweepMode: m.sweepMode }),
    ...(m.workerHealthThresholdMs === undefined ? {} : { workers: { staleAfter: Duration.millis(m.workerHealthThresholdMs) } }),
    ...(m.quietCheckIntervalMs === undefined ? {} : {
      quiet: m.quietCheckIntervalMs === 0 ? false as const : { checkInterval: Duration.millis(m.quietCheckIntervalMs) }
    }),
    ...(m.retention === undefined ? {} : { retention: { olderThan: Duration.days(m.retention.olderThanDays), action: m.retention.action } })
  }
}

/**
 * The Promise monitor settings and the `[monitor]` keys whose limits they take (seconds there,
 * milliseconds here; `retention.olderThanDays` in days in both).
 */
const monitorSettingKeys = [
  ["checkIntervalMs", "monitor.check_interval_secs", 1_000],
  ["sweepIntervalMs", "monitor.sweep_interval_secs", 1_000],
  ["maxTasksPerScan", "monitor.max_tasks_per_scan", 1],
  ["maxObjectsPerSweep", "monitor.max_objects_per_sweep", 1],
  ["workerHealthThresholdMs", "monitor.worker_health_threshold_secs", 1_000],
  ["quietCheckIntervalMs", "monitor.quiet_check_interval_secs", 1_000]
] as const

/** A setting's kind in the config file's model (the limits are defined once, there). */
const configKind = (path: string): ConfigModel.SettingKind | undefined => ConfigModel.settingsByPath.get(path)?.kind

/** Why a `monitor` setting is refused, or undefined; the ranges are the config file's. */
const invalidMonitorSetting = (monitor: WorkerOptions["monitor"]): { readonly option: string; readonly message: string } | undefined => {
  if (typeof monitor !== "object") return undefined
  for (const [key, path, unit] of monitorSettingKeys) {
    const value = monitor[key]
    const kind = configKind(path)
    if (value === undefined || kind?._tag !== "Int") continue
    // 0 is "off" where the file allows it; otherwise the file's whole-second range, in ms here
    const min = Math.max(kind.min, 1) * unit
    const max = kind.max * unit
    if (Number.isInteger(value) && (value === 0 ? kind.min === 0 : value >= min && value <= max)) continue
    const range = `${kind.min === 0 ? "0 (off) or " : ""}an integer from ${min} to ${max}`
    const file = unit === 1 ? "" : ` (the config file's ${path}: ${kind.min} to ${kind.max} s)`
    return { option: `monitor.${key}`, message: `must be ${range}${file}, got ${value}` }
  }
  const enums = [["sweepMode", monitor.sweepMode, "monitor.sweep_mode"], ["retention.action", monitor.retention?.action, "monitor.retention_action"]] as const
  for (const [key, value, path] of enums) {
    const kind = configKind(path)
    if (value === undefined || kind?._tag !== "Enum" || kind.values.includes(value)) continue
    return { option: `monitor.${key}`, message: `must be ${kind.values.map((v) => JSON.stringify(v)).join(" or ")}, got ${JSON.stringify(value)}` }
  }
  const days = monitor.retention?.olderThanDays
  const daysKind = configKind("monitor.retention_days")
  if (days !== undefined && daysKind?._tag === "Int" && !isIntegerIn(days, daysKind.min, daysKind.max)) {
    return { option: "monitor.retention.olderThanDays", message: `must be an integer from ${daysKind.min} to ${daysKind.max} (days), got ${days}` }
  }
  return undefined
}

/** ShardLeasing's default lease lifetime, against which a lone `renewIntervalMs` is checked. */
const defaultLeaseTtlMs = 30_000

const isIntegerIn = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max

/**
 * The options the Effect worker would take but cannot work with, named as the Promise API names
 * them (the Effect side names the config file's keys, or does not check: a zero cap would lease
 * nothing and poll only what other workers cannot run). The limits are the config file's.
 */
const invalidOption = (options: WorkerOptions): EffectWorker.InvalidWorkerOptions | undefined => {
  const invalid = (option: string, message: string) => new EffectWorker.InvalidWorkerOptions({ option, message: `${option}: ${message}` })
  if (options.readyPageSize !== undefined && !isIntegerIn(options.readyPageSize, 1, 1_000)) {
    return invalid("readyPageSize", `must be an integer from 1 to 1000, got ${options.readyPageSize}`)
  }
  const monitor = invalidMonitorSetting(options.monitor)
  if (monitor !== undefined) return invalid(monitor.option, monitor.message)
  for (const key of ["busyMs", "idleMs"] as const) {
    const ms = options.heartbeat?.[key]
    if (ms !== undefined && !isIntegerIn(ms, 1_000, 3_600_000)) return invalid(`heartbeat.${key}`, `must be an integer from 1000 to 3600000 (1 s to 1 h), got ${ms}`)
  }
  const leasing = options.shardLeasing
  if (typeof leasing !== "object") return undefined
  if (leasing.shardsPerWorker !== undefined && !isIntegerIn(leasing.shardsPerWorker, 1, Number.MAX_SAFE_INTEGER)) {
    return invalid("shardLeasing.shardsPerWorker", `must be a positive integer (most shards this worker owns), got ${leasing.shardsPerWorker}`)
  }
  if (leasing.leaseTtlMs !== undefined && !isIntegerIn(leasing.leaseTtlMs, 2_000, 3_600_000)) {
    return invalid("shardLeasing.leaseTtlMs", `must be an integer from 2000 to 3600000 (2 s to 1 h), got ${leasing.leaseTtlMs}`)
  }
  const renew = leasing.renewIntervalMs
  if (renew === undefined) return undefined
  if (!isIntegerIn(renew, 1_000, 3_600_000)) {
    return invalid("shardLeasing.renewIntervalMs", `must be an integer from 1000 to 3600000 (1 s to 1 h), got ${renew}`)
  }
  const ttl = leasing.leaseTtlMs ?? defaultLeaseTtlMs
  return renew < ttl ? undefined : new EffectWorker.InvalidWorkerOptions({
    option: "shardLeasing.renewIntervalMs",
    message: `shardLeasing.renewIntervalMs (${renew}) must be below shardLeasing.leaseTtlMs (${ttl}${leasing.leaseTtlMs === undefined ? ", the default" : ""}); ` +
      "renew a few times per lease lifetime"
  })
}

const shardLeasingOption = (leasing: WorkerOptions["shardLeasing"]): EffectWorker.WorkerOptions["shardLeasing"] => {
  if (typeof leasing !== "object") return leasing === true
  return {
    shardsPerWorker: leasing.shardsPerWorker,
    ...(leasing.leaseTtlMs === undefined ? {} : { leaseTtl: Duration.millis(leasing.leaseTtlMs) }),
    ...(leasing.renewIntervalMs === undefined ? {} : { renewInterval: Duration.millis(leasing.renewIntervalMs) })
  }
}

const toEvent = (e: EffectWorker.WorkerEvent): WorkerEvent => {
  switch (e._tag) {
    case "Claimed":
      return { type: "claimed", taskId: e.task.id, task: fromTask(e.task) }
    case "Completed":
      return { type: "completed", taskId: e.task.id, task: fromTask(e.task), durationMs: e.durationMillis }
    case "Retried":
      return { type: "retried", taskId: e.task.id, task: fromTask(e.task), error: e.error }
    case "Failed":
      return { type: "failed", taskId: e.task.id, task: fromTask(e.task), error: e.error }
    case "Rescheduled":
      return { type: "rescheduled", taskId: e.task.id, task: fromTask(e.task) }
    case "Cancelled":
      return { type: "cancelled", taskId: e.task.id, task: fromTask(e.task) }
    case "Released":
      return { type: "released", taskId: e.task.id, task: fromTask(e.task) }
    case "LeaseLost":
      return { type: "leaseLost", taskId: e.taskId, error: e.reason }
    case "Progress":
      return { type: "progress", taskId: e.taskId, progress: e.progress }
  }
}

/**
 * A worker of a connection, from `queue.worker(options)`.
 *
 * @since 0.1.0
 * @category facade
 */
export class Worker {
  readonly #options: WorkerOptions
  readonly #runner: Runner
  readonly #onDone: () => void
  readonly #handlers: Array<HandlerDefinition<never>> = []
  readonly #listeners = new Map<WorkerEventType, Array<(event: WorkerEvent) => void>>()
  // a `once` wrapper → the listener it wraps, so `off(type, listener)` also removes a pending `once`
  readonly #onceOriginals = new WeakMap<(event: WorkerEvent) => void, (event: WorkerEvent) => void>()
  #running: Promise<void> | undefined
  #stopRequested = false
  #stop: (() => void) | undefined
  #handle: EffectWorker.Worker | undefined

  /**
   * Use `queue.worker(options)`.
   *
   * @internal
   */
  static make(options: WorkerOptions, runner: Runner, onDone: () => void): Worker {
    return new Worker(options, runner, onDone)
  }

  // private, and the factory internal: the declarations name no Effect type
  private constructor(options: WorkerOptions, runner: Runner, onDone: () => void) {
    this.#options = options
    this.#runner = runner
    this.#onDone = onDone
  }

  /**
   * Registers the handler of a task type: a plain name (input is the stored JSON), or a typed
   * contract built with `TaskType.make` (input decoded, output encoded by its Schemas). Returns
   * the worker, so calls chain. Throw {@link RetryableError}, {@link PermanentError} or
   * {@link RescheduleError} to steer the task; anything else thrown is retried.
   *
   * ```ts
   * worker.task("send_email", async (input, ctx) => {
   *   const res = await fetch(url, { signal: ctx.signal })
   *   if (res.status === 429) throw new RescheduleError({ delaySeconds: 60 })
   *   if (!res.ok) throw new RetryableError(`mail API answered ${res.status}`)
   *   return { sent: true }
   * })
   * ```
   */
  task<I, O>(type: TypedTaskType<I, O>, handler: Handler<I, O>, options?: HandlerOptions): this
  /**
   * A plain task type. Type parameters describe the stored JSON input and the output, without a
   * Schema (like BullMQ's `Worker<Data, Result>`): `worker.task<{ to: string }>("send_email", …)`.
   * They are not checked at run time; use a `TaskType` contract (or a published JSON Schema) for that.
   */
  task<I = unknown, O = unknown>(taskType: string, handler: Handler<I, O>, options?: HandlerOptions): this
  task(type: string | TypedTaskType<unknown, unknown>, handler: Handler<never, unknown>, options?: HandlerOptions): this {
    this.assertNotStarted()
    const h = handler as Handler
    this.#handlers.push(typeof type === "string" ? toHandlerDefinition(type, h, options) : toHandlerDefinition(asTaskType(type), h, options))
    return this
  }

  /**
   * Registers every handler of a handlers module's default export: an object mapping task types
   * to Promise handlers, or a list of Effect `Worker.handler(…)` definitions.
   */
  register(handlers: HandlerMap | ReadonlyArray<EffectHandler>): this {
    this.assertNotStarted()
    this.#handlers.push(...definitionsFromModule(handlers))
    return this
  }

  /**
   * Registers DAG workflows built with `Workflow.define`: this worker runs their orchestrators,
   * steps and compensations. Throws a `BuquetError` (`InvalidWorkflowDefinition`) for a workflow
   * that cannot run (a cycle, an unknown dependency, …), saying what to fix.
   */
  workflow(...workflows: ReadonlyArray<Workflow<any>>): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    this.assertNotStarted()
    try {
      this.#handlers.push(...workflowHandlers(workflows))
    } catch (e) {
      if (e instanceof BuquetError) throw e
      throw new BuquetError("InvalidWorkflowDefinition", e instanceof Error ? e.message.replace(/^DagWorkflow\.handlers: /, "") : String(e))
    }
    return this
  }

  /** Calls `listener` for every event of this kind (synchronously, in the worker: keep it short; a throw is ignored). */
  on(type: WorkerEventType, listener: (event: WorkerEvent) => void): this {
    const list = this.#listeners.get(type) ?? []
    list.push(listener)
    this.#listeners.set(type, list)
    return this
  }

  /** Removes a listener added with {@link Worker.on} or {@link Worker.once} (the last one added, if added twice). */
  off(type: WorkerEventType, listener: (event: WorkerEvent) => void): this {
    const list = this.#listeners.get(type) ?? []
    const at = list.lastIndexOf(listener)
    if (at < 0) {
      const wrapped = list.findLastIndex((l) => this.#onceOriginals.get(l) === listener)
      if (wrapped >= 0) list.splice(wrapped, 1)
    } else list.splice(at, 1)
    return this
  }

  /** Calls `listener` for the next event of this kind only. */
  once(type: WorkerEventType, listener: (event: WorkerEvent) => void): this {
    const wrapper = (event: WorkerEvent) => {
      this.off(type, wrapper)
      listener(event)
    }
    this.#onceOriginals.set(wrapper, listener)
    return this.on(type, wrapper)
  }

  /** The task types with a handler. */
  get taskTypes(): ReadonlyArray<string> {
    return this.#handlers.map((h) => h.taskType)
  }

  /**
   * Runs the worker until {@link Worker.stop}, SIGINT/SIGTERM (unless `signals: false`) or
   * `maxTasks`, then shuts down gracefully; resolves once it has. Rejects with a `BuquetError` for
   * a bad option (`_tag` `"InvalidWorkerOptions"`). Calling it again returns the same promise.
   */
  run(): Promise<void> {
    if (this.#running === undefined) {
      this.#running = this.#runner(this.program()).finally(() => {
        this.#handle = undefined
        this.#onDone()
      })
    }
    return this.#running
  }

  /** Stops the worker gracefully; resolves when it has stopped (at once if it never ran). Idempotent. */
  stop(): Promise<void> {
    this.#stopRequested = true
    this.#stop?.()
    return this.#running === undefined ? Promise.resolve() : this.#running.then(() => undefined, () => undefined)
  }

  /** Counters of the running worker (all zero when it is not running). */
  async stats(): Promise<WorkerStats> {
    const handle = this.#handle
    const s = handle === undefined ? undefined : await this.#runner(handle.stats)
    return {
      claimed: s?.claimed ?? 0,
      completed: s?.completed ?? 0,
      failed: s?.failed ?? 0,
      retried: s?.retried ?? 0,
      rescheduled: s?.rescheduled ?? 0,
      cancelled: s?.cancelled ?? 0,
      released: s?.released ?? 0,
      running: s?.running ?? []
    }
  }

  private assertNotStarted(): void {
    if (this.#running !== undefined) throw new BuquetError("InvalidWorkerOptions", "register handlers before worker.run()")
  }

  private emit(event: EffectWorker.WorkerEvent): Effect.Effect<void> {
    return Effect.sync(() => {
      const converted = toEvent(event)
      // a copy: a `once` listener removes itself while we iterate
      for (const listener of [...(this.#listeners.get(converted.type) ?? [])]) {
        try {
          listener(converted)
        } catch {
          // a listener's failure is the listener's business: the worker goes on
        }
      }
    })
  }

  private program(): Effect.Effect<void, unknown, Services> {
    const options = this.#options
    const hooks: EffectWorker.WorkerHooks = {
      Claimed: (e) => this.emit(e),
      Completed: (e) => this.emit(e),
      Retried: (e) => this.emit(e),
      Rescheduled: (e) => this.emit(e),
      Failed: (e) => this.emit(e),
      Cancelled: (e) => this.emit(e),
      Released: (e) => this.emit(e),
      LeaseLost: (e) => this.emit(e),
      Progress: (e) => this.emit(e)
    }
    const main = (stop: Deferred.Deferred<void>): Effect.Effect<void, unknown, Services | Scope.Scope> =>
      Effect.gen(this, function*() {
        const invalid = invalidOption(options)
        if (invalid !== undefined) return yield* invalid
        const queue = yield* QueueTag
        const worker = yield* EffectWorker.make(
          {
            id: options.id,
            concurrency: options.concurrency,
            shards: options.shards,
            shardPrefixLen: queue.config.shardPrefixLen,
            shardLeasing: shardLeasingOption(options.shardLeasing),
            pageSize: options.readyPageSize,
            heartbeat: {
              ...(options.heartbeat?.busyMs === undefined ? {} : { busy: Duration.millis(options.heartbeat.busyMs) }),
              ...(options.heartbeat?.idleMs === undefined ? {} : { idle: Duration.millis(options.heartbeat.idleMs) })
            },
            polling: toPolling(options.polling),
            wakeUp: options.wakeUp,
            shutdownGracePeriod: options.shutdownGraceMs === undefined ? undefined : Duration.millis(options.shutdownGraceMs),
            maxTasks: options.maxTasks,
            cancelCheckInterval: options.cancelCheckIntervalMs === undefined ? undefined : Duration.millis(options.cancelCheckIntervalMs),
            // The Effect worker embeds and stops the monitor (default on) and the scheduler loop.
            monitor: monitorOption(options.monitor),
            scheduler: options.scheduler === true,
            hooks
          },
          this.#handlers
        )
        this.#handle = worker
        const signals = options.signals === false ? [] : options.signals ?? ["SIGINT", "SIGTERM"]
        const waits: Array<Effect.Effect<unknown>> = [worker.await, Deferred.await(stop)]
        if (signals.length > 0) waits.push(awaitSignal(signals))
        yield* Effect.raceAll(waits)
        // Stop explicitly rather than by closing the scope: finalizers run uninterruptibly, and
        // there the shutdown's race against its grace period cannot end early.
        yield* worker.stop
      })
    return Effect.gen(this, function*() {
      const stop = yield* Deferred.make<void>()
      this.#stop = () => Deferred.unsafeDone(stop, Effect.void)
      if (this.#stopRequested) return
      yield* Effect.scoped(main(stop))
    })
  }
}
