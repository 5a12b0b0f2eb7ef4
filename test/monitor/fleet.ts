/**
 * Real workers as killable "processes" for the monitor suites.
 *
 * A process is a Worker (and optionally a Monitor) in its own Scope on its own view of the shared
 * store. The view dies with the process: once a FaultyStorage rule delivers the {@link kill}
 * defect right after a PUT landed (`timing: "after"`), every later request of that process fails,
 * as if the process had been SIGKILLed at that instant: nothing it still tries reaches the bucket.
 * A supervisor then starts a fresh process (a new worker id), like a process manager would.
 *
 * @module
 */
import { Cause, Effect, Exit, Layer, Option, Queue, Ref, Scope } from "effect"
import { StorageUnavailable } from "../../src/domain/StorageError.js"
import * as Monitor from "../../src/programs/Monitor.js"
import * as Worker from "../../src/programs/Worker.js"
import type { HandlerDefinition } from "../../src/programs/Worker.js"
import { ServerClock, type ServerClockService } from "../../src/services/ServerClock.js"
import { Storage, type StorageService } from "../../src/services/Storage.js"
import { layerWorkerServices } from "../../src/Buquet.js"

/** The defect a FaultyStorage rule throws to kill the process that made the request. */
export const kill = "test: process killed right after this write landed"

/** Whether an exit carries the kill defect. */
const isKill = <A, E>(exit: Exit.Exit<A, E>): boolean =>
  Exit.isFailure(exit) && Option.exists(Cause.dieOption(exit.cause), (d) => d === kill)

/** A process's view of `underlying`: dies on the kill defect (or `die()`); later requests fail. */
export const processView = (underlying: StorageService, onDeath: Effect.Effect<void>) => {
  let dead = false
  const die = Effect.suspend(() => {
    if (dead) return Effect.void
    dead = true
    return onDeath
  })
  const guard = <A, E>(op: string, self: Effect.Effect<A, E>): Effect.Effect<A, E | StorageUnavailable> =>
    Effect.suspend((): Effect.Effect<A, E | StorageUnavailable> =>
      dead ? Effect.fail(new StorageUnavailable({ operation: op, message: "process killed (test)" })) : self
    ).pipe(Effect.onExit((exit) => (isKill(exit) ? die : Effect.void)))
  const storage: StorageService = {
    ...underlying,
    get: (key) => guard("get", underlying.get(key)),
    head: (key) => guard("head", underlying.head(key)),
    put: (key, body, condition) => guard("put", underlying.put(key, body, condition)),
    delete: (key) => guard("delete", underlying.delete(key)),
    deleteIfMatch: (key, etag) => guard("deleteIfMatch", underlying.deleteIfMatch(key, etag)),
    deleteMany: (keys) => guard("deleteMany", underlying.deleteMany(keys)),
    list: (prefix, options) => guard("list", underlying.list(prefix, options))
  }
  return { storage, die, isDead: () => dead }
}

/** One running process. */
export interface Proc {
  readonly id: string
  readonly storage: StorageService
  readonly worker: Worker.Worker
  readonly monitor: Monitor.MonitorHandle | undefined
  readonly isDead: () => boolean
  /** Kills it now (no graceful anything). */
  readonly die: Effect.Effect<void>
}

/** Options of {@link startProcess}. */
export interface ProcOptions {
  readonly id: string
  readonly worker: Worker.WorkerOptions
  readonly handlers: ReadonlyArray<HandlerDefinition>
  /** Also run an embedded monitor instance with these options. */
  readonly monitor?: Monitor.MonitorOptions | undefined
  /** Wraps the process's view (e.g. to count its LISTs). */
  readonly wrap?: ((s: StorageService) => StorageService) | undefined
}

/**
 * Starts a process on `underlying`. When it dies, its scope is closed in the background (against
 * its dead view, so its shutdown cannot touch the bucket) and `onDeath` runs.
 */
export const startProcess = (
  underlying: StorageService,
  clock: ServerClockService,
  options: ProcOptions,
  onDeath: (id: string) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const view = processView(
      underlying,
      Effect.zipRight(Effect.forkDaemon(Scope.close(scope, Exit.void)), Effect.suspend(() => onDeath(options.id)))
    )
    const storage = options.wrap === undefined ? view.storage : options.wrap(view.storage)
    const inProcess = <A, E>(self: Effect.Effect<A, E, Storage | ServerClock | Scope.Scope>) =>
      self.pipe(Effect.provideService(Storage, storage), Effect.provideService(ServerClock, clock), Scope.extend(scope))
    const monitor = options.monitor === undefined ? undefined : yield* inProcess(Monitor.make(options.monitor))
    // the suites run their own monitor beside the worker (options.monitor), so the embedded one is off unless asked for
    const worker = yield* inProcess(
      Worker.make({ monitor: false, ...options.worker, id: options.id }, options.handlers).pipe(Effect.provide(Layer.orDie(layerWorkerServices({ shardPrefixLen: options.worker.shardPrefixLen }))))
    )
    return {
      id: options.id,
      storage,
      worker,
      monitor,
      isDead: view.isDead,
      die: view.die
    } satisfies Proc
  })

/**
 * A supervised worker process: whenever the current one dies, a fresh one (`{prefix}-{n}`) starts.
 * Returns the list of every process started so far.
 */
export const supervise = (
  underlying: StorageService,
  clock: ServerClockService,
  options: Omit<ProcOptions, "id"> & { readonly prefix: string }
) =>
  Effect.gen(function*() {
    const deaths = yield* Queue.unbounded<string>()
    const started = yield* Ref.make<ReadonlyArray<Proc>>([])
    const start = Effect.gen(function*() {
      const n = (yield* Ref.get(started)).length + 1
      const p = yield* startProcess(underlying, clock, { ...options, id: `${options.prefix}-${n}` }, (id) => Queue.offer(deaths, id))
      yield* Ref.update(started, (ps) => [...ps, p])
    })
    yield* start
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Queue.take(deaths), start)))
    return { processes: Ref.get(started) }
  })

/**
 * Counts each process's LISTs of `leases/` (those that answered) in `lists`, by process id: wrap a
 * process's storage with `countingLeaseWalks(lists)(id)` (ProcOptions.wrap).
 */
export const countingLeaseWalks = (lists: Map<string, number>) => (id: string) => (s: StorageService): StorageService => ({
  ...s,
  list: (prefix, options) =>
    s.list(prefix, options).pipe(Effect.tap(() =>
      Effect.sync(() => {
        if (prefix === "leases/") lists.set(id, (lists.get(id) ?? 0) + 1)
      })
    ))
})
