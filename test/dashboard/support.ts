/**
 * Helpers of the dashboard suites: a stack on one in-memory bucket where the dashboard's requests
 * are counted apart from the test's own (producer / simulated worker), an HTTP client on loopback,
 * SSE clients, the real Worker on the producer's side of the bucket ({@link startWorker}), and a
 * quick simulated worker step for seeding (claim → complete / fail through the Transitions, with
 * the worker's metric events).
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
import * as Transitions from "../../src/domain/Transitions.js"
import * as CountingStorage from "../../src/layers/CountingStorage.js"
import type { RequestCounterService } from "../../src/services/RequestCounter.js"
import { casTask, keyOfTaskId, readTask } from "../../src/protocol/TaskObjects.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { readyMarkerKey } from "../../src/domain/ReadyIndex.js"
import * as Metrics from "../../src/services/Metrics.js"
import { Queue } from "../../src/services/Queue.js"
import type { QueueService } from "../../src/services/Queue.js"
import { ServerClock } from "../../src/services/ServerClock.js"
import type { ServerClockService } from "../../src/services/ServerClock.js"
import { Storage } from "../../src/services/Storage.js"
import type { StorageService } from "../../src/services/Storage.js"
import * as Dashboard from "../../src/programs/Dashboard.js"
import * as Worker from "../../src/programs/Worker.js"
import { layerWorkerServices } from "../../src/Buquet.js"

/** One bucket, two views: the dashboard's (counted) and the test's own (not counted). */
export interface Stack {
  /** What the test uses to produce and work tasks (its requests are not counted). */
  readonly producer: QueueService
  readonly raw: StorageService
  readonly clock: ServerClockService
  /** Counts the dashboard's requests only. */
  readonly counter: RequestCounterService
  /** Runs an effect in the dashboard's context (counted storage, its own Queue). */
  readonly asDashboard: <A, E>(
    self: Effect.Effect<A, E, Queue | Storage | ServerClock | Scope.Scope>
  ) => Effect.Effect<A, E, Scope.Scope>
}

/**
 * Builds a fresh stack: in memory on the ambient clock (TestClock in `it.effect`) by default, or on
 * the given storage layer (e.g. the real RGW with a fresh key prefix) with a ServerClock learnt from it.
 */
export const makeStack = (options: { readonly shardPrefixLen?: number; readonly storage?: Layer.Layer<Storage> } = {}) =>
  Effect.gen(function*() {
    const shardPrefixLen = options.shardPrefixLen ?? 1
    const raw = options.storage === undefined
      ? yield* MemoryStorage.make()
      : Context.get(yield* Layer.build(options.storage), Storage)
    const clock = options.storage === undefined
      ? yield* Effect.provide(ServerClock, ServerClockLayer.layerLocal)
      : yield* ServerClockLayer.make().pipe(Effect.provideService(Storage, raw))
    const { counter, storage } = yield* CountingStorage.make(raw)
    const producer = yield* QueueLayer.make({ shardPrefixLen }).pipe(
      Effect.provideService(Storage, raw),
      Effect.provideService(ServerClock, clock)
    )
    const dashboardQueue = yield* QueueLayer.make({ shardPrefixLen }).pipe(
      Effect.provideService(Storage, storage),
      Effect.provideService(ServerClock, clock)
    )
    const stack: Stack = {
      producer,
      raw,
      clock,
      counter,
      asDashboard: (self) =>
        self.pipe(
          Effect.provideService(Queue, dashboardQueue),
          Effect.provideService(Storage, storage),
          Effect.provideService(ServerClock, clock)
        )
    }
    return stack
  }).pipe(Effect.orDie)

/**
 * One attempt of a simulated worker on `taskId`: claim, then complete with `output` or fail with
 * `error` (failed for good), recording the worker's metric events like the real worker does.
 */
export const workOnce = (
  stack: Stack,
  taskId: string,
  outcome: { readonly output: unknown } | { readonly error: string },
  durationMillis = 10
) =>
  Effect.gen(function*() {
    const key = keyOfTaskId(taskId, stack.producer.config.shardPrefixLen)
    const found = yield* readTask(key)
    if (Option.isNone(found)) return yield* Effect.dieMessage(`no task ${taskId}`)
    const now = yield* stack.clock.now
    const claimed = Transitions.claim(found.value.task, { now, workerId: "test-worker", leaseId: randomUUID() })
    const etag = yield* casTask(claimed, found.value.etag)
    yield* Metrics.recordWorkerEvent({ _tag: "Claimed", task: claimed })
    yield* stack.raw.delete(readyMarkerKey(found.value.task))
    if ("output" in outcome) {
      const done = Transitions.complete(claimed, { now, output: outcome.output })
      yield* casTask(done, etag)
      yield* Metrics.recordWorkerEvent({ _tag: "Completed", task: done, durationMillis })
      return done
    }
    const failed = Transitions.fail(claimed, { now, error: outcome.error })
    yield* casTask(failed, etag)
    yield* Metrics.recordWorkerEvent({ _tag: "Failed", task: failed, reason: "permanent" })
    return failed
  }).pipe(Effect.provideService(Storage, stack.raw), Effect.orDie)

/**
 * Starts a real Worker on the test's side of the bucket (its requests are not counted as the
 * dashboard's), in the current Scope.
 */
export const startWorker = (
  stack: Stack,
  handlers: ReadonlyArray<Worker.HandlerDefinition>,
  options: Worker.WorkerOptions = {}
) =>
  Worker.make({ shardPrefixLen: stack.producer.config.shardPrefixLen, ...options }, handlers).pipe(
    Effect.provide(layerWorkerServices({ shardPrefixLen: stack.producer.config.shardPrefixLen })),
    Effect.provideService(Storage, stack.raw),
    Effect.provideService(ServerClock, stack.clock),
    Effect.orDie
  )

/**
 * Rewrites a stored task's JSON (as another producer might have written it: the Queue itself
 * refuses hostile task types, but the dashboard must show whatever the bucket holds).
 */
export const rewriteTask = (stack: Stack, taskId: string, patch: Record<string, unknown>) =>
  Effect.gen(function*() {
    const key = keyOfTaskId(taskId, stack.producer.config.shardPrefixLen)
    const found = yield* stack.raw.get(key)
    if (Option.isNone(found)) return yield* Effect.dieMessage(`no task ${taskId}`)
    const json = { ...(JSON.parse(new TextDecoder().decode(found.value.body)) as Record<string, unknown>), ...patch }
    yield* stack.raw.put(key, new TextEncoder().encode(JSON.stringify(json)))
  }).pipe(Effect.orDie)

/** A plain HTTP request to the dashboard (real loopback socket). */
export const request = (url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual", ...init })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

/** An SSE client: counts `snapshot` events and waits for a given event id. */
export interface SseClient {
  readonly events: () => number
  readonly lastId: () => number
  readonly waitForId: (id: number) => Effect.Effect<void>
}

/** Opens an SSE connection to `/events` for the scope's lifetime. */
export const openSse = (baseUrl: string): Effect.Effect<SseClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const controller = new AbortController()
      const response = await fetch(`${baseUrl}/events`, { signal: controller.signal })
      let events = 0
      let lastId = 0
      const waiters: Array<{ id: number; resolve: () => void }> = []
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let buffer = ""
      void (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read()
            if (done) return
            buffer += decoder.decode(value, { stream: true })
            let end: number
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end)
              buffer = buffer.slice(end + 2)
              const id = /^id: (\d+)$/m.exec(block)
              if (/^event: snapshot$/m.test(block) && id !== null) {
                events += 1
                lastId = Number(id[1])
                for (const w of waiters.splice(0)) (w.id <= lastId ? w.resolve : () => waiters.push(w))()
              }
            }
          }
        } catch {
          // aborted at release
        }
      })()
      const client: SseClient = {
        events: () => events,
        lastId: () => lastId,
        waitForId: (id) =>
          Effect.promise(() =>
            new Promise<void>((resolve) => {
              if (lastId >= id) resolve()
              else waiters.push({ id, resolve })
            })
          )
      }
      return { client, controller }
    }),
    ({ controller }) => Effect.sync(() => controller.abort())
  ).pipe(Effect.map(({ client }) => client))

/** Starts the dashboard on a free loopback port in the stack's dashboard context. */
export const startDashboard = (stack: Stack, options: Dashboard.DashboardOptions = {}) =>
  stack.asDashboard(Dashboard.start({ port: 0, ...options })).pipe(Effect.orDie)
