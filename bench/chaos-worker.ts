/**
 * A chaos worker process (forked by bench/chaos.ts): the Worker with its embedded Monitor
 * (leader-elected, short periods) on RGW through FaultyStorage. Every handler start, every completion and every
 * injected fault is appended to a shared log with a synchronous write, so it survives SIGKILL.
 * Stops gracefully on SIGTERM.
 *
 * @module
 */
import { appendFileSync } from "node:fs"
import { Duration, Effect, Layer, Logger, LogLevel, Random, Schema } from "effect"
import * as FaultyStorage from "../src/layers/FaultyStorage.js"
import { FaultInjector } from "../src/layers/FaultyStorage.js"
import * as S3Storage from "../src/layers/S3Storage.js"
import * as ServerClockLayer from "../src/layers/ServerClock.js"
import * as Worker from "../src/programs/Worker.js"
import { layerWorkerServices } from "../src/Buquet.js"

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"

export const ChaosChildConfig = Schema.Struct({
  endpoint: Schema.String,
  region: Schema.String,
  bucket: Schema.String,
  accessKeyId: Schema.String,
  secretAccessKey: Schema.String,
  keyPrefix: Schema.String,
  logFile: Schema.String,
  faultRate: Schema.Number,
  seed: Schema.String,
  concurrency: Schema.Number,
  checkIntervalMillis: Schema.Number
})

const config = Schema.decodeUnknownSync(Schema.parseJson(ChaosChildConfig))(process.env["CHAOS_CHILD"] ?? "")
const pid = process.pid
const line = (text: string) => appendFileSync(config.logFile, `${text}\n`)

// the 10 % of failures, split over the kinds a real bucket produces; latency comes on top
const f = config.faultRate
const rates: FaultyStorage.FaultRates = {
  unavailable: f * 0.3,
  slowDown: f * 0.2,
  ambiguous: f * 0.2,
  lostResponse: f * 0.2,
  conditional500: f * 0.1,
  latency: 0.05
}

const storage = FaultyStorage.layer({ seed: config.seed, rates, maxLatency: Duration.millis(50) }).pipe(
  Layer.provide(
    S3Storage.layer({
      bucket: config.bucket,
      endpoint: config.endpoint,
      region: config.region,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      keyPrefix: config.keyPrefix,
      maxSockets: 64,
      // a kill must not leave a request waiting long; the faults are the point, not the retries
      retry: { maxRetries: 3, maxDelay: Duration.millis(500) }
    })
  )
)
const stack = Layer.provideMerge(layerWorkerServices(), ServerClockLayer.layer.pipe(Layer.provideMerge(storage))).pipe(Layer.orDie)

const logFaults = Effect.gen(function*() {
  const injector = yield* FaultInjector
  let seen = 0
  const flush = Effect.gen(function*() {
    const all = yield* injector.injected
    for (const fault of all.slice(seen)) {
      if (fault.kind !== "Latency") line(`F ${pid} ${fault.kind} ${fault.operation} ${fault.key ?? "-"}`)
    }
    seen = all.length
  })
  return yield* Effect.forever(Effect.zipRight(flush, Effect.sleep("100 millis")))
})

const main = Effect.gen(function*() {
  yield* Effect.forkScoped(logFaults)
  yield* Worker.run(
    {
      id: `chaos-${pid}`,
      // the Worker's embedded monitor (leader-elected across the workers), with short periods
      monitor: {
        checkInterval: Duration.millis(config.checkIntervalMillis),
        sweepInterval: Duration.seconds(10),
        maxObjectsPerSweep: 1000,
        leader: { ttl: Duration.seconds(4), renewInterval: Duration.seconds(1), holderId: `chaos-${pid}` }
      },
      concurrency: config.concurrency,
      // polling only: recovered and retried tasks must be found within a second, whatever touched them
      polling: { _tag: "Adaptive", max: Duration.seconds(1) },
      wakeUp: false,
      heartbeat: { busy: Duration.seconds(5), idle: Duration.seconds(10) },
      shutdownGracePeriod: Duration.seconds(5),
      hooks: { Completed: (e) => Effect.sync(() => line(`C ${pid} ${e.task.id} ${e.task.attempt}`)) }
    },
    [
      Worker.handler("chaos", (_input, ctx) =>
        Effect.gen(function*() {
          line(`S ${pid} ${ctx.taskId} ${ctx.attempt}`)
          yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 30)))
        }))
    ]
  ).pipe(Effect.orDie)
}).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))

// the chaos run went away (killed, crashed): stop too, gracefully, and surely within 10 s
process.on("disconnect", () => {
  process.kill(pid, "SIGTERM")
  setTimeout(() => process.exit(1), 10_000).unref()
})

line(`P ${pid} start`)
Effect.runPromise(main.pipe(Effect.provide(stack))).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`[chaos worker ${pid}] failed:`, e)
    process.exit(1)
  }
)
