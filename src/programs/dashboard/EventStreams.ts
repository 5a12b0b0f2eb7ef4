/**
 * The dashboard's live updates (`/events`, server-sent events) for many tabs at a bounded cost.
 *
 * One hub fiber watches the snapshot while at least one stream is open, encodes each snapshot
 * ONCE, and publishes the bytes (and a keep-alive comment every 15 s) to a sliding PubSub. Every
 * stream is a subscription to it: no watcher, timer or encoding per connection, and a client that
 * reads slowly holds at most {@link bufferedEvents} events (older ones are dropped; the next
 * snapshot supersedes them anyway). At most `maxStreams` streams are open at once; past that,
 * `/events` answers 503 with `Retry-After` (the page then reloads itself every 30 s instead).
 *
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { DateTime, Deferred, Duration, Effect, Option, PubSub, Ref, Stream, SubscriptionRef } from "effect"
import type { Scope } from "effect"
import type { QueueSnapshot, Snapshot } from "../QueueSnapshot.js"
import { costText } from "./Pages.js"

/** The default most concurrent `/events` streams (each costs a few kB; 3 000 attempts stay far under 200 MB). */
export const defaultMaxStreams = 200

/** Events a slow client may have waiting before the oldest are dropped. */
export const bufferedEvents = 4

const keepAliveEvery = Duration.seconds(15)

const iso = (t: Option.Option<DateTime.Utc>): string | null => Option.match(t, { onNone: () => null, onSome: DateTime.formatIso })

/** One snapshot as an SSE event: what the page script updates itself from. */
export const sseEvent = (s: Snapshot): string =>
  `event: snapshot\nid: ${s.refreshes}\ndata: ${
    JSON.stringify({
      refreshes: s.refreshes,
      refreshedAt: iso(s.refreshedAt),
      counts: s.counts,
      cost: costText(s.lastCost),
      error: Option.getOrNull(s.error)
    })
  }\n\n`

/** The live-update streams of one dashboard. */
export interface EventStreams {
  /** The answer to one `GET /events`: the stream, or 503 past the cap. Needs the request's scope. */
  readonly respond: Effect.Effect<HttpServerResponse.HttpServerResponse, never, Scope.Scope>
  /** Streams open now. */
  readonly open: Effect.Effect<number>
  /** Requests answered 503 because the cap was reached, since start. */
  readonly refused: Effect.Effect<number>
  /** The cap. */
  readonly maxStreams: number
}

/** Options of {@link make}. */
export interface EventStreamsOptions {
  readonly snapshot: QueueSnapshot
  /** Completed when the server shuts down: every stream ends so the server can close. */
  readonly shutdown: Deferred.Deferred<void>
  /** Most concurrent streams (default {@link defaultMaxStreams}). */
  readonly maxStreams?: number | undefined
}

/** Starts the hub in the current scope. */
export const make = Effect.fn("EventStreams.make")(function*(options: EventStreamsOptions) {
  const maxStreams = options.maxStreams ?? defaultMaxStreams
  const textEncoder = new TextEncoder()
  const keepAlive = textEncoder.encode(": keep-alive\n\n")
  const hub = yield* PubSub.sliding<Uint8Array>(bufferedEvents)
  const open = yield* SubscriptionRef.make(0)
  const refused = yield* Ref.make(0)
  // the last encoded snapshot, for the first event of a new stream
  let last: { readonly refreshes: number; readonly bytes: Uint8Array } | undefined
  const encoded = (s: Snapshot): Uint8Array => {
    if (last?.refreshes !== s.refreshes) last = { refreshes: s.refreshes, bytes: textEncoder.encode(sseEvent(s)) }
    return last.bytes
  }

  const untilOpen = (accept: (n: number) => boolean) => open.changes.pipe(Stream.takeUntil(accept), Stream.runDrain)
  // the one watcher: on while a stream is open (so an unwatched dashboard makes no requests)
  yield* Effect.gen(function*() {
    yield* untilOpen((n) => n > 0)
    yield* options.snapshot.watch.pipe(
      Stream.map(encoded),
      Stream.merge(Stream.tick(keepAliveEvery).pipe(Stream.as(keepAlive)), { haltStrategy: "left" }),
      Stream.interruptWhen(untilOpen((n) => n === 0)),
      Stream.runForEach((bytes) => PubSub.publish(hub, bytes))
    )
  }).pipe(Effect.forever, Effect.interruptible, Effect.forkScoped)
  // shutting the hub down ends every subscription's stream
  yield* Deferred.await(options.shutdown).pipe(Effect.zipRight(PubSub.shutdown(hub)), Effect.forkScoped)

  const admit = SubscriptionRef.modify(open, (n) => (n < maxStreams ? [true, n + 1] as const : [false, n] as const))
  const release = SubscriptionRef.update(open, (n) => n - 1)

  const respond: EventStreams["respond"] = Effect.gen(function*() {
    // released when the request's scope closes, i.e. after the stream ended (or was never sent)
    const admitted = yield* Effect.acquireRelease(admit, (ok) => (ok ? release : Effect.void))
    if (!admitted) {
      yield* Ref.update(refused, (n) => n + 1)
      return HttpServerResponse.text(
        `too many live-update streams are open (${maxStreams}); the page reloads every 30 s instead\n`,
        { status: 503, headers: { "retry-after": "30", "cache-control": "no-store", connection: "close" } }
      )
    }
    const subscription = yield* PubSub.subscribe(hub)
    const current = yield* options.snapshot.current
    const first = current.refreshes > 0 ? Stream.succeed(encoded(current)) : Stream.empty
    const stream = Stream.concat(first, Stream.fromQueue(subscription))
    return HttpServerResponse.stream(stream, {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
    })
  })

  const streams: EventStreams = {
    respond,
    open: SubscriptionRef.get(open),
    refused: Ref.get(refused),
    maxStreams
  }
  return streams
})

/** The Prometheus series of the streams (appended to the dashboard's `/metrics`). */
export const exposition = (streams: EventStreams): Effect.Effect<string> =>
  Effect.map(Effect.all([streams.open, streams.refused]), ([open, refused]) =>
    [
      "# HELP buquet_dashboard_event_streams Live-update (/events) streams open now.",
      "# TYPE buquet_dashboard_event_streams gauge",
      `buquet_dashboard_event_streams ${open}`,
      "# HELP buquet_dashboard_event_streams_max The most concurrent live-update streams (then 503).",
      "# TYPE buquet_dashboard_event_streams_max gauge",
      `buquet_dashboard_event_streams_max ${streams.maxStreams}`,
      "# HELP buquet_dashboard_event_streams_refused_total Live-update requests answered 503 because the cap was reached.",
      "# TYPE buquet_dashboard_event_streams_refused_total counter",
      `buquet_dashboard_event_streams_refused_total ${refused}`,
      ""
    ].join("\n"))
