/**
 * The Metrics layer: the Prometheus text exposition of Effect's metric registry, a Storage wrapper
 * that counts `buquet_s3_requests_total{kind}`, and a small `/metrics` HTTP endpoint for workers
 * (`buquet worker --metrics-port`).
 *
 * ```ts
 * import * as Metrics from "./layers/Metrics.js"
 * yield* Metrics.serve({ port: 9464 })                 // in the worker's scope
 * Metrics.layerStorage.pipe(Layer.provide(S3Storage.layer(...)))  // count requests by kind
 * ```
 *
 * @module
 */
import { createServer } from "node:http"
// Sub-path imports, and the Node HTTP server and the router loaded only when `serve` runs: the
// package indexes (every module of @effect/platform, undici through @effect/platform-node) cost a
// worker that serves no metrics about 50 MB of memory, and the router alone ~5 MB.
import type * as HttpServer from "@effect/platform/HttpServer"
import { Effect, Layer, Metric, MetricState, Option } from "effect"
import type { MetricPair } from "effect"
import type { StorageReadError } from "../domain/StorageError.js"
import { Metrics, recordS3Request, s3Requests } from "../services/Metrics.js"
import { listAllFromList, Storage } from "../services/Storage.js"
import type { ListOptions, PutCondition, StorageService } from "../services/Storage.js"

// --- exposition ----------------------------------------------------------------------------------

/** The content type of the Prometheus text format. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const metricName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : `_${cleaned}`
}
const labelName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(cleaned) ? cleaned : `_${cleaned}`
}
const labelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const helpText = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const number = (n: number | bigint): string =>
  typeof n === "bigint"
    ? n.toString()
    : Number.isNaN(n)
    ? "NaN"
    : n === Number.POSITIVE_INFINITY
    ? "+Inf"
    : n === Number.NEGATIVE_INFINITY
    ? "-Inf"
    : String(n)

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${labelName(k)}="${labelValue(v)}"`).join(",")}}`

/** HELP for Effect's runtime series, which carry no description. */
const runtimeHelp: Record<string, string> = {
  effect_fiber_started_total: "Fibers started in this process.",
  effect_fiber_active: "Fibers running now in this process.",
  effect_fiber_successes_total: "Fibers that ended with a success.",
  effect_fiber_failures_total: "Fibers that ended with a failure.",
  effect_fiber_lifetimes: "How long fibers lived, in milliseconds."
}

/**
 * A counter's family by Prometheus conventions: one that can go down (Effect's counters that are not
 * `incremental`, such as `effect_fiber_active`) is a gauge; a counter's name ends in `_total`.
 */
const counterFamily = (name: string, incremental: boolean): readonly [string, "counter" | "gauge"] =>
  name.endsWith("_total") ? [name, "counter"] : incremental ? [`${name}_total`, "counter"] : [name, "gauge"]

interface Family {
  type: "counter" | "gauge" | "histogram" | "summary"
  help: string | undefined
  readonly lines: Array<string>
}

/**
 * Renders metric pairs (from `Metric.snapshot`) as Prometheus text: one `# HELP` / `# TYPE` per
 * family, then its samples. Counters and gauges are one sample; histograms are cumulative
 * `_bucket{le}` samples with `_sum` and `_count`; summaries give quantiles; frequencies become a
 * counter with a `key` label. Families and samples are sorted so the output is stable.
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const family = (name: string, type: Family["type"], help: Option.Option<string>): Family => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrUndefined(help), lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = metricName(key.name)
    const tags = key.tags.map((t) => [t.key, t.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      const incremental = "incremental" in key.keyType && key.keyType.incremental === true
      const [counter, type] = counterFamily(name, incremental)
      family(counter, type, key.description).lines.push(`${counter}${labels(tags)} ${number(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).lines.push(`${name}${labels(tags)} ${number(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", key.description)
      let hasInf = false
      for (const [bound, cumulative] of state.buckets) {
        if (bound === Number.POSITIVE_INFINITY) hasInf = true
        f.lines.push(`${name}_bucket${labels([...tags, ["le", number(bound)]])} ${number(cumulative)}`)
      }
      if (!hasInf) f.lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${number(state.count)}`)
      f.lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${number(state.count)}`)
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", key.description)
      for (const [q, value] of state.quantiles) {
        if (Option.isSome(value)) f.lines.push(`${name}${labels([...tags, ["quantile", number(q)]])} ${number(value.value)}`)
      }
      f.lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${number(state.count)}`)
    } else if (MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", key.description)
      for (const [k, count] of state.occurrences) f.lines.push(`${name}${labels([...tags, ["key", k]])} ${number(count)}`)
    }
  }
  const out: Array<string> = []
  for (const name of [...families.keys()].sort()) {
    const f = families.get(name)!
    // promtool lints a family without HELP: Effect's runtime series get theirs here (buquet's own
    // carry a description)
    const help = f.help ?? runtimeHelp[name]
    if (help !== undefined) out.push(`# HELP ${name} ${helpText(help)}`)
    out.push(`# TYPE ${name} ${f.type}`)
    // histogram lines keep their bucket order; other families sort by labels
    out.push(...(f.type === "histogram" || f.type === "summary" ? f.lines : [...f.lines].sort()))
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}

/** The Prometheus text of every metric in this process's registry. */
export const exposition: Effect.Effect<string> = Effect.map(Metric.snapshot, render)

/** The Metrics service over Effect's process-wide registry. */
export const layer: Layer.Layer<Metrics> = Layer.succeed(Metrics, { exposition })

// --- storage requests ------------------------------------------------------------------------------

/** Wraps a storage so that every request is counted in `buquet_s3_requests_total{kind}` (kinds as CountingStorage's). */
export const meterStorage = (underlying: StorageService): StorageService => {
  const counted = <A, E>(kind: string, effect: Effect.Effect<A, E>) => Effect.zipRight(recordS3Request(kind), effect)
  const list = (prefix: string, options?: ListOptions) => counted("LIST", underlying.list(prefix, options))
  return {
    get: (key) => counted("GET", underlying.get(key)),
    head: (key) => counted("HEAD", underlying.head(key)),
    put: (key: string, body: Uint8Array, condition?: PutCondition) => counted("PUT", underlying.put(key, body, condition)),
    delete: (key) => counted("DELETE", underlying.delete(key)),
    deleteIfMatch: (key, etag) => counted("DELETE", underlying.deleteIfMatch(key, etag)),
    deleteMany: (keys) =>
      keys.length === 0
        ? underlying.deleteMany(keys)
        : Effect.zipRight(
          // S3's DeleteObjects takes up to 1000 keys per request
          Metric.incrementBy(Metric.tagged(s3Requests, "kind", "DELETE"), Math.ceil(keys.length / 1000)),
          underlying.deleteMany(keys)
        ),
    list,
    listAll: listAllFromList<StorageReadError>(list),
    listVersions: (key) => counted("LIST-VERSIONS", underlying.listVersions(key)),
    getVersion: (key, versionId) => counted("GET", underlying.getVersion(key, versionId)),
    capabilities: underlying.capabilities,
    versioning: underlying.versioning,
    dateSamples: underlying.dateSamples,
    onDateSample: underlying.onDateSample
  }
}

/** Wraps the {@link Storage} in context with request metrics: `layerStorage.pipe(Layer.provide(S3Storage.layer(...)))`. */
export const layerStorage: Layer.Layer<Storage, never, Storage> = Layer.effect(Storage, Effect.map(Storage, meterStorage))

// --- the endpoint ----------------------------------------------------------------------------------

/** Where the metrics endpoint listens. */
export interface ServeOptions {
  /** TCP port (0 picks a free one). */
  readonly port: number
  /** Interface to bind (default 127.0.0.1; use 0.0.0.0 for a remote scraper). */
  readonly host?: string | undefined
}

/** An HTTP app serving the exposition at `GET /metrics`; its modules load with it (see {@link serve}). */
export const app = Effect.promise(() =>
  Promise.all([import("@effect/platform/HttpRouter"), import("@effect/platform/HttpServerResponse")])
).pipe(
  Effect.map(([HttpRouter, HttpServerResponse]) =>
    HttpRouter.empty.pipe(
      HttpRouter.get("/metrics", Effect.map(exposition, (text) => HttpServerResponse.text(text, { contentType })))
    )
  )
)

/**
 * Serves `GET /metrics` until the scope closes; returns the bound address (useful with port 0).
 * For `buquet worker --metrics-port N`: `yield* Metrics.serve({ port: N })` in the worker's scope.
 */
export const serve = Effect.fn("Metrics.serve")(function*(options: ServeOptions) {
  const NodeHttpServer = yield* Effect.promise(() => import("@effect/platform-node/NodeHttpServer"))
  const server = yield* NodeHttpServer.make(() => createServer(), { port: options.port, host: options.host ?? "127.0.0.1" })
  yield* server.serve(yield* app)
  const address: HttpServer.Address = server.address
  return address
})
