/**
 * `buquet worker`, `buquet monitor` and `buquet dashboard` (alias `serve`): thin shells that
 * resolve their sections of the configuration (`[worker]`, `[worker.polling]`, `[monitor]`,
 * `[dashboard]`; their flags take part in the usual precedence) into the programs' options and
 * run the programs until SIGINT/SIGTERM.
 *
 * @module
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { randomUUID } from "node:crypto"
import * as Metrics from "../layers/Metrics.js"
import * as Dashboard from "../programs/Dashboard.js"
import * as Monitor from "../programs/Monitor.js"
import * as Worker from "../programs/Worker.js"
import { BuquetConfig } from "../services/BuquetConfig.js"
import { globalOptions, settingFlags, stderrLine, toCliError, usageError, withStack } from "./common.js"
import { loadHandlers } from "./handlers.js"
import { dashboardOptions, monitorOptions, workerOptions } from "./options.js"
import { untilStopRequested } from "./stop.js"

const optText = (name: string, description: string) => Options.text(name).pipe(Options.withDescription(description), Options.optional)
const optInt = (name: string, description: string) => Options.integer(name).pipe(Options.withDescription(description), Options.optional)

/** `buquet worker --handlers FILE [...]`. */
export const worker = Command.make(
  "worker",
  {
    ...globalOptions,
    handlers: Options.file("handlers").pipe(
      Options.withDescription("a module whose default export maps task types to async handlers, or lists Worker.handler(…) definitions (.js, .mjs or .ts)"),
      Options.optional
    ),
    concurrency: optText("concurrency", "tasks run at once (config [worker] concurrency, default 1)"),
    shards: optText("shards", "comma-separated shards to poll, e.g. 0,1,a (config [worker] shards, default all)"),
    readyPageSize: optText("ready-page-size", "keys per LIST of the ready index, 1–1000 (config [worker] ready_page_size, default 1000)"),
    id: optText("id", "the worker's id (config [worker] id, default worker-<8 hex>)"),
    shardLeasing: Options.boolean("shard-leasing").pipe(
      Options.withDescription("poll only the shards this worker leases ([worker.shard_leasing] enabled = true)")
    ),
    noMonitor: Options.boolean("no-monitor").pipe(Options.withDescription("do not embed the monitor (config [worker] monitor = false)")),
    scheduler: Options.boolean("scheduler").pipe(Options.withDescription("embed the cron scheduler loop (config [worker] scheduler = true)")),
    metricsPort: optInt("metrics-port", "serve Prometheus metrics on this port at /metrics (127.0.0.1)"),
    maxTasks: optInt("max-tasks", "stop after this many tasks"),
    grace: optText("grace", "seconds running handlers may finish after SIGINT/SIGTERM (config [worker] shutdown_grace_secs, default 30)"),
    pollStrategy: optText("poll-strategy", "adaptive or fixed ([worker.polling] strategy)"),
    pollMinMs: optText("poll-min-ms", "adaptive: first wait after an empty pass ([worker.polling] min_interval_ms)"),
    pollMaxMs: optText("poll-max-ms", "adaptive: longest wait ([worker.polling] max_interval_ms)"),
    pollMultiplier: optText("poll-multiplier", "adaptive: growth per empty pass ([worker.polling] backoff_multiplier)"),
    pollIntervalMs: optText("poll-interval-ms", "fixed: wait between passes ([worker.polling] interval_ms)")
  },
  (o) =>
    Effect.gen(function*() {
      if (Option.isSome(o.maxTasks) && o.maxTasks.value < 1) return yield* usageError(`--max-tasks must be at least 1, got ${o.maxTasks.value}`)
      const port = Option.getOrUndefined(o.metricsPort)
      if (port !== undefined && (port < 0 || port > 65_535)) return yield* usageError(`--metrics-port must be from 0 to 65535, got ${port}`)
      // the reference's `buquet worker` ran without handlers, i.e. only its embedded monitor
      if (Option.isNone(o.handlers)) {
        return yield* usageError(
          "worker needs --handlers FILE (a module whose default export maps task types to handlers, see examples/handlers.ts); " +
            "to run only lease recovery and index repair, use `buquet monitor`"
        )
      }
      const handlers = yield* loadHandlers(o.handlers.value)
      const flags = settingFlags([
        ["worker.concurrency", o.concurrency],
        ["worker.shards", o.shards],
        ["worker.ready_page_size", o.readyPageSize],
        ["worker.id", o.id],
        ["worker.shutdown_grace_secs", o.grace],
        ["worker.monitor", o.noMonitor ? Option.some(false) : Option.none()],
        ["worker.scheduler", o.scheduler ? Option.some(true) : Option.none()],
        ["worker.shard_leasing.enabled", o.shardLeasing ? Option.some(true) : Option.none()],
        ["worker.polling.strategy", o.pollStrategy],
        ["worker.polling.min_interval_ms", o.pollMinMs],
        ["worker.polling.max_interval_ms", o.pollMaxMs],
        ["worker.polling.backoff_multiplier", o.pollMultiplier],
        ["worker.polling.interval_ms", o.pollIntervalMs]
      ])
      yield* withStack(
        o,
        Effect.scoped(Effect.gen(function*() {
          const config = yield* BuquetConfig
          const options = workerOptions(config.worker, config.shardPrefixLen, `worker-${randomUUID().slice(0, 8)}`, config.monitor)
          const extras: Array<string> = []
          if (port !== undefined) {
            const address = yield* Metrics.serve({ port })
            extras.push(`metrics on http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : port}/metrics`)
          }
          if (config.worker.monitor) extras.push("monitor embedded")
          if (config.worker.scheduler) extras.push("scheduler embedded")
          if (config.worker.shardLeasing.enabled) extras.push("shard leasing")
          const types = handlers.map((h) => h.taskType).join(", ")
          yield* stderrLine(
            `buquet: worker ${options.id} running ${types} (concurrency ${options.concurrency}, ` +
              `shards ${options.shards === undefined ? "all" : options.shards.join(",")}${extras.map((e) => `, ${e}`).join("")}); ` +
              "Ctrl-C or SIGTERM stops it gracefully"
          )
          // Worker.make, not Worker.run: the signals come through ./stop.ts, so a second one forces the stop
          yield* Effect.scoped(Effect.gen(function*() {
            const running = yield* Worker.make({ ...options, maxTasks: Option.getOrUndefined(o.maxTasks) }, handlers)
            yield* untilStopRequested(running.await, (signal) =>
              stderrLine(
                `buquet: ${signal}: worker ${options.id} stopping gracefully: no new tasks; running ones have ` +
                  `${config.worker.shutdownGraceSecs} s to finish (send ${signal} again to force the stop)`
              ))
          })).pipe(
            Effect.onInterrupt(() =>
              stderrLine(`buquet: worker ${options.id} stopped by force; its running tasks went back to the queue without using a retry`)
            )
          )
          yield* stderrLine(`buquet: worker ${options.id} stopped`)
        })),
        { settingFlags: flags, meterStorage: port !== undefined }
      )
    }).pipe(toCliError)
).pipe(Command.withDescription("run tasks with the handlers of a module until SIGINT/SIGTERM"))

/** `buquet monitor`: a standalone, leader-elected monitor. */
export const monitor = Command.make(
  "monitor",
  {
    ...globalOptions,
    checkInterval: optText("check-interval", "seconds between lease-recovery periods ([monitor] check_interval_secs, default 30)"),
    workerHealthThreshold: optText(
      "worker-health-threshold",
      "seconds without a heartbeat before a worker is reported stale ([monitor] worker_health_threshold_secs, default 180)"
    ),
    sweepInterval: optText("sweep-interval", "seconds between full sweep passes, 0 = off ([monitor] sweep_interval_secs, default 300)"),
    sweepPageSize: optText("sweep-page-size", "keys per sweeper LIST, 1–1000 ([monitor] max_objects_per_sweep, default 1000)")
  },
  (o) =>
    withStack(
      o,
      Effect.gen(function*() {
        const config = yield* BuquetConfig
        const m = config.monitor
        yield* stderrLine(
          `buquet: monitor running (leader-elected: only one instance per bucket works; lease recovery every ${m.checkIntervalSecs} s, ` +
            `${m.sweepIntervalSecs === 0 ? "sweeper off" : `sweep every ${m.sweepIntervalSecs} s in pages of ${m.maxObjectsPerSweep}`}, ` +
            `workers stale after ${m.workerHealthThresholdSecs} s); Ctrl-C stops it`
        )
        yield* untilStopRequested(Monitor.run(monitorOptions(config.monitor)))
        yield* stderrLine("buquet: monitor stopped")
      }),
      {
        settingFlags: settingFlags([
          ["monitor.check_interval_secs", o.checkInterval],
          ["monitor.sweep_interval_secs", o.sweepInterval],
          ["monitor.worker_health_threshold_secs", o.workerHealthThreshold],
          ["monitor.max_objects_per_sweep", o.sweepPageSize]
        ])
      }
    ).pipe(toCliError)
).pipe(Command.withDescription("recover expired leases and repair indexes until SIGINT/SIGTERM"))

const dashboardConfig = {
  ...globalOptions,
  host: optText("host", "interface to bind ([dashboard] host, default 127.0.0.1; beyond loopback a token is required)"),
  port: optText("port", "TCP port ([dashboard] port, default 3000)"),
  token: optText(
    "token",
    "access token, at least 16 characters; prefer env BUQUET_DASHBOARD_TOKEN or [dashboard] token, as a flag it is visible in ps"
  ),
  refresh: optText("refresh", "seconds between refreshes while a page is open ([dashboard] refresh_secs, default 5)"),
  maxStreams: optText(
    "max-streams",
    "most concurrent live-update streams; past it /events answers 503 ([dashboard] max_streams, default 200)"
  )
}

const dashboardHandler = (o: Command.Command.ParseConfig<typeof dashboardConfig>) =>
  withStack(
    o,
    Effect.gen(function*() {
      const config = yield* BuquetConfig
      return yield* Effect.scoped(Effect.gen(function*() {
        const handle = yield* Dashboard.start(dashboardOptions(config.dashboard))
        yield* stderrLine(`buquet: dashboard on ${handle.url}${config.dashboard.token === undefined ? "" : " (token required)"}; Ctrl-C stops it`)
        yield* untilStopRequested(Effect.never)
      }))
    }),
    {
      settingFlags: settingFlags([
        ["dashboard.host", o.host],
        ["dashboard.port", o.port],
        ["dashboard.token", o.token],
        ["dashboard.refresh_secs", o.refresh],
        ["dashboard.max_streams", o.maxStreams]
      ])
    }
  ).pipe(toCliError)

/** `buquet dashboard`: the web dashboard. */
export const dashboard = Command.make("dashboard", dashboardConfig, dashboardHandler).pipe(
  Command.withDescription("serve the web dashboard until SIGINT/SIGTERM")
)

/** `buquet serve`: the reference's name for `dashboard`. */
export const serve = Command.make("serve", dashboardConfig, dashboardHandler).pipe(
  Command.withDescription("serve the web dashboard (alias of dashboard)")
)
