/**
 * `buquet dashboard` (alias `serve`): the web dashboard (design.md §8) on `@effect/platform`'s
 * HTTP server.
 *
 * - Bound to 127.0.0.1 by default; any other address needs an access token, else it refuses to
 *   start with {@link DashboardRefused}. Without a token it answers only requests addressed to a
 *   loopback host name (DNS-rebinding guard).
 * - Pages: overview (the per-type table of `buquet stats` first, then counts per status, depth per
 *   shard, throughput and failure charts as inline SVG), cost (what the refresh costs), tasks
 *   (status / type / shard / time filters, the orders of `list --sort`, newest created first by
 *   default, short ids linking the full id, paging), task detail (fields, pretty input and output,
 *   transition timeline, S3 versions where kept; cancel, replay, archive; `/tasks/<short id>` leads
 *   to it), workers (health, current tasks, counters), schedules (next and last run; enable,
 *   disable, trigger when the Scheduler service is provided). Inline CSS and script only.
 * - Live updates over SSE (`/events`) from ONE shared refresh (see `QueueSnapshot.ts`): the number
 *   of open tabs does not change the requests made to the bucket; one hub encodes each snapshot
 *   once for every stream, and at most `maxEventStreams` streams are open (then 503; see
 *   `dashboard/EventStreams.ts`).
 * - POST actions need the per-process CSRF token (form field `_csrf` or header `X-CSRF-Token`): 403
 *   without it, and 403 when the browser says the request comes from another site (`Sec-Fetch-Site`
 *   / `Origin`). Every response carries `nosniff` and the Content-Security-Policy.
 * - JSON API under `/api/v1` (overview, types, tasks, tasks/:id, workers, schedules, csrf, and the POST
 *   actions); Prometheus text at `/metrics`.
 *
 * ```ts
 * // the CLI: buquet dashboard --host 127.0.0.1 --port 3000 [--token T] [--refresh 5s]
 * yield* Dashboard.run({ host, port, token })   // needs Queue, Storage, ServerClock (Scheduler optional)
 * ```
 *
 * @module
 */
import { createServer } from "node:http"
import { Deferred, Duration, Effect, Schema } from "effect"
import { Queue } from "../services/Queue.js"
import { Scheduler } from "../services/Scheduler.js"
import type { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import * as EventStreams from "./dashboard/EventStreams.js"
import { makeApp } from "./dashboard/Routes.js"
import { checkBinding, DashboardRefused, makeSecrets, minTokenLength } from "./dashboard/Security.js"
import * as QueueSnapshot from "./QueueSnapshot.js"

export { DashboardRefused } from "./dashboard/Security.js"

/** The dashboard could not listen (port in use, address not available, …). */
export class DashboardListenFailed extends Schema.TaggedError<DashboardListenFailed>()("DashboardListenFailed", {
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String
}) {}

/** Why the dashboard did not start. */
export type DashboardError = DashboardRefused | DashboardListenFailed

/** Options of `buquet dashboard` / {@link run}. */
export interface DashboardOptions {
  /** Interface to bind (default `127.0.0.1`). Anything but loopback requires {@link DashboardOptions.token}. */
  readonly host?: string | undefined
  /** TCP port (default 3000, the reference's; 0 picks a free one). */
  readonly port?: number | undefined
  /**
   * Access token (at least 16 characters when binding beyond loopback). Clients send
   * `Authorization: Bearer <token>`, or open the dashboard once with `?token=<token>` (sets a cookie).
   */
  readonly token?: string | undefined
  /** How often the shared refresh runs while a tab is open (default 5 s). */
  readonly refreshInterval?: Duration.DurationInput | undefined
  /** Most GETs per refresh (default 500): changed objects beyond it are read by the next refresh. */
  readonly maxGetsPerRefresh?: number | undefined
  /** Most LIST pages of `tasks/` per refresh (default 50 = 50 000 tasks); larger buckets are walked on across refreshes. */
  readonly maxListPagesPerRefresh?: number | undefined
  /**
   * Most concurrent live-update streams (`/events`, default 200); past it `/events` answers 503
   * and the page falls back to reloading. Each open stream costs a few kB of memory.
   */
  readonly maxEventStreams?: number | undefined
  /** Heartbeat age beyond which a worker shows as unhealthy (default 3 min: three idle heartbeat intervals). */
  readonly healthyWithin?: Duration.DurationInput | undefined
}

/** A running dashboard (from {@link start}). */
export interface DashboardHandle {
  /** The base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string
  readonly host: string
  readonly port: number
  /** The per-process CSRF token (what the pages embed). */
  readonly csrfToken: string
  /** The shared snapshot source (its cost counters are on every page). */
  readonly snapshot: QueueSnapshot.QueueSnapshot
}

const urlHost = (host: string): string => (host.includes(":") ? `[${host}]` : host)

/**
 * Starts the dashboard in the current scope and returns where it listens; closing the scope ends
 * the SSE streams, the refresh fiber and the server.
 */
export const start = Effect.fn("Dashboard.start")(function*(options: DashboardOptions = {}) {
  const host = options.host ?? "127.0.0.1"
  const port = options.port ?? 3000
  const refused = checkBinding(host, options.token)
  if (refused !== undefined) return yield* refused
  if (options.token !== undefined && options.token.length > 0 && options.token.length < minTokenLength) {
    return yield* new DashboardRefused({
      host,
      message: `the dashboard token is too short (${options.token.length} characters): use at least ${minTokenLength}, ` +
        "e.g. the output of `openssl rand -hex 16`"
    })
  }
  const queue = yield* Queue
  const storage = yield* Storage
  const scheduler = yield* Effect.serviceOption(Scheduler)
  const secrets = makeSecrets(options.token)
  const snapshot = yield* QueueSnapshot.make({
    refreshInterval: options.refreshInterval,
    maxGetsPerRefresh: options.maxGetsPerRefresh,
    maxListPagesPerRefresh: options.maxListPagesPerRefresh,
    healthyWithin: options.healthyWithin,
    shardPrefixLen: queue.config.shardPrefixLen
  })
  // loaded here, not at import: `buquet worker` imports this module but rarely serves the dashboard
  const NodeHttpServer = yield* Effect.promise(() => import("@effect/platform-node/NodeHttpServer"))
  const server = yield* NodeHttpServer.make(() => createServer(), { host, port }).pipe(
    Effect.mapError((e) =>
      new DashboardListenFailed({
        host,
        port,
        message: `the dashboard cannot listen on ${host}:${port}: ${String(e.cause)}; choose another --port or --host`
      })
    )
  )
  const shutdown = yield* Deferred.make<void>()
  const events = yield* EventStreams.make({ snapshot, shutdown, maxStreams: options.maxEventStreams })
  const app = makeApp({ queue, storage, snapshot, secrets, scheduler, shardPrefixLen: queue.config.shardPrefixLen, events })
  yield* server.serve(app)
  // added after the server, so it runs before the server's close: open SSE streams end first
  yield* Effect.addFinalizer(() => Deferred.succeed(shutdown, undefined))
  const address = server.address
  const boundPort = address._tag === "TcpAddress" ? address.port : port
  const handle: DashboardHandle = {
    url: `http://${urlHost(host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host)}:${boundPort}`,
    host,
    port: boundPort,
    csrfToken: secrets.csrf,
    snapshot
  }
  return handle
})

/** Runs the dashboard until interrupted (Ctrl-C): what `buquet dashboard` calls. */
export const run = (
  options: DashboardOptions = {}
): Effect.Effect<never, DashboardError, Queue | Storage | ServerClock> =>
  Effect.scoped(
    Effect.gen(function*() {
      const handle = yield* start(options)
      yield* Effect.logInfo(`buquet dashboard on ${handle.url}${options.token === undefined ? "" : " (token required)"}`)
      return yield* Effect.never
    })
  )
