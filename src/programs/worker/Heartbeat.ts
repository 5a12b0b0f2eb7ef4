/**
 * Worker registration and heartbeat, from their own fiber (never between tasks, so a long task
 * does not make the worker look dead): `workers/{id}.json` is written at start, then every 10 s
 * while busy and every 60 s while idle (so an idle worker stays within its request budget), and
 * deleted when the worker stops.
 *
 * @module
 */
import { hostname } from "node:os"
import { DateTime, Duration, Effect } from "effect"
import { encodeObject } from "../../domain/Codec.js"
import { workerKey } from "../../domain/Keys.js"
import { WorkerRecord } from "../../domain/WorkerRecord.js"
import { putPlain } from "../../protocol/TaskObjects.js"
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
    hostname: hostname(),
    pid: process.pid,
    status: snapshot.stopping ? "stopping" : "running"
  })
  yield* putPlain(workerKey(settings.workerId), encodeObject(WorkerRecord, record))
})

/**
 * The heartbeat loop: beats now, then every `busyInterval` while tasks run and every
 * `idleInterval` while none do (checked every `busyInterval`). Failures are logged and retried
 * at the next beat. Runs until interrupted.
 */
export const loop = (
  settings: HeartbeatSettings,
  snapshot: Effect.Effect<WorkerSnapshot>
): Effect.Effect<never, never, Storage | ServerClock> =>
  Effect.gen(function*() {
    const clock = yield* ServerClock
    let last = Number.NEGATIVE_INFINITY
    while (true) {
      const snap = yield* snapshot
      const now = yield* clock.currentTimeMillis
      const due = snap.currentTasks.length > 0 ? settings.busyInterval : settings.idleInterval
      if (now - last >= Duration.toMillis(due)) {
        yield* beat(settings, snap).pipe(Effect.catchAll((e) => Effect.logWarning(`heartbeat failed: ${e.message}`)))
        last = now
      }
      yield* Effect.sleep(settings.busyInterval)
    }
  })

/** Deletes the worker record (deregistration). */
export const deregister = Effect.fn("Worker.deregister")(function*(workerId: string) {
  const storage = yield* Storage
  yield* storage.delete(workerKey(workerId))
})
