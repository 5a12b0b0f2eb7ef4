/**
 * Worker registration and heartbeat, from their own fiber (never between tasks, so a long task
 * does not make the worker look dead): `workers/{id}.json` is written at start, then every 10 s
 * while busy and every 60 s while idle (so an idle worker stays within its request budget), and
 * deleted when the worker stops. A settled task also triggers a beat (at most one a second), so the
 * record's counters are right after every settle: `buquet workers` reads them from the record, and an
 * idle worker would otherwise show them a minute late.
 *
 * @module
 */
import { hostname } from "node:os"
import { DateTime, Duration, Effect, Queue, Schedule } from "effect"
import { encodeObject } from "../../domain/Codec.js"
import { workerKey } from "../../domain/Keys.js"
import { buquetVersion } from "../../domain/Version.js"
import { WorkerRecord } from "../../domain/WorkerRecord.js"
import { putPlain } from "../../protocol/TaskObjects.js"
import { registerTaskTypes } from "../../protocol/TaskTypeMarkers.js"
import { ServerClock } from "../../services/ServerClock.js"
import { Storage } from "../../services/Storage.js"

/** What the heartbeat reports, read fresh for each beat. */
export interface WorkerSnapshot {
  readonly currentTasks: ReadonlyArray<string>
  readonly completed: number
  readonly failed: number
  readonly retried: number
  readonly rescheduled: number
  readonly cancelled: number
  readonly stopping: boolean
  /** The shards polled now, when they change (shard leasing); else the settings' shards. */
  readonly shards?: ReadonlyArray<string> | undefined
}

/** Static facts of the worker. */
export interface HeartbeatSettings {
  readonly workerId: string
  readonly shards: ReadonlyArray<string>
  readonly concurrency: number
  readonly taskTypes: ReadonlyArray<string>
  readonly startedAt: DateTime.Utc
  readonly busyInterval: Duration.Duration
  readonly idleInterval: Duration.Duration
}

/** Writes the worker record once. */
export const beat = Effect.fn("Worker.heartbeat")(function*(settings: HeartbeatSettings, snapshot: WorkerSnapshot) {
  const clock = yield* ServerClock
  const now = yield* clock.now
  const record = new WorkerRecord({
    workerId: settings.workerId,
    startedAt: settings.startedAt,
    lastHeartbeat: now,
    shards: snapshot.shards ?? settings.shards,
    currentTask: snapshot.currentTasks[0] ?? null,
    tasksCompleted: snapshot.completed,
    tasksFailed: snapshot.failed,
    currentTasks: snapshot.currentTasks,
    tasksRetried: snapshot.retried,
    tasksRescheduled: snapshot.rescheduled,
    tasksCancelled: snapshot.cancelled,
    concurrency: settings.concurrency,
    taskTypes: settings.taskTypes,
    buquetVersion,
    hostname: hostname(),
    pid: process.pid,
    status: snapshot.stopping ? "stopping" : "running"
  })
  yield* putPlain(workerKey(settings.workerId), encodeObject(WorkerRecord, record))
})

/** The shortest gap between two beats a settle triggers: a busy worker's bursts cost one PUT a second at most. */
export const settleBeatGap: Duration.Duration = Duration.seconds(1)

/**
 * The heartbeat loop: beats now, then every `busyInterval` while tasks run and every
 * `idleInterval` while none do (checked every `busyInterval`), and within {@link settleBeatGap}
 * of a signal on `settled` (a task settled: the counters changed). Failures are logged and retried
 * at the next beat. Runs until interrupted. `registeredAt` (server epoch ms): the worker's
 * registration was just written then, so the first beat waits its interval instead of repeating it.
 */
export const loop = (
  settings: HeartbeatSettings,
  snapshot: Effect.Effect<WorkerSnapshot>,
  settled?: Queue.Dequeue<void>,
  registeredAt?: number
): Effect.Effect<never, never, Storage | ServerClock> =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    const gap = Duration.toMillis(settleBeatGap)
    let last = registeredAt ?? Number.NEGATIVE_INFINITY
    let dirty = false
    while (true) {
      const snap = yield* snapshot
      const now = yield* clock.currentTimeMillis
      const due = dirty ? gap : Duration.toMillis(snap.currentTasks.length > 0 ? settings.busyInterval : settings.idleInterval)
      if (now - last >= due) {
        yield* beat(settings, snap).pipe(Effect.catchAll((e) => Effect.logWarning(`heartbeat failed: ${e.message}`)))
        last = now
        dirty = false
      }
      const pause: Duration.Duration = dirty ? Duration.millis(Math.max(0, last + gap - now)) : settings.busyInterval
      if (settled === undefined || dirty) {
        yield* Effect.sleep(pause)
      } else {
        dirty = yield* Effect.raceFirst(Effect.as(Effect.sleep(pause), false), Effect.as(Queue.take(settled), true))
      }
    }
  })

/** Retry of the type registration: from a second, doubling, then every minute, until it succeeds. */
const registerRetry = Schedule.exponential(Duration.seconds(1), 2).pipe(Schedule.union(Schedule.spaced(Duration.minutes(1))))

/**
 * Registers the worker's handler types (`control/types/{type}.json`, protocol/TaskTypeMarkers.ts)
 * so `submit` can tell a type no worker ever handled; retried until it succeeds (a failure is
 * logged), from its own fiber so it never delays claiming.
 */
export const registerTypes = (settings: HeartbeatSettings): Effect.Effect<void, never, Storage | ServerClock> =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    yield* registerTaskTypes(settings.workerId, settings.taskTypes, yield* clock.now)
  }).pipe(
    Effect.tapError((e) => Effect.logWarning(`could not register the task types ${settings.taskTypes.join(", ")}: ${e.message}; retrying`)),
    Effect.retry(registerRetry),
    Effect.catchAll(() => Effect.void)
  )

/** Deletes the worker record (deregistration). */
export const deregister = Effect.fn("Worker.deregister")(function*(workerId: string) {
  const storage = yield* Storage
  yield* storage.delete(workerKey(workerId))
})
