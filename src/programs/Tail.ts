/**
 * `buquet tail`: a stream of task changes (from → to). Each round LISTs `tasks/` — the listing
 * carries every object's ETag — and GETs only the objects whose ETag changed, so a quiet queue
 * costs one LIST per 1,000 tasks per round instead of a GET per task (the reference re-read every
 * task every second). Works for every shard prefix length.
 *
 * @module
 */
import { Chunk, DateTime, Duration, Effect, Option, Schedule, Stream } from "effect"
import { decodeTask } from "../domain/Task.js"
import type { Task } from "../domain/Task.js"
import type { TaskStatus } from "../domain/TaskStatus.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"

/** One observed change of a task. */
export interface TaskChange {
  /** When it was observed (server time). */
  readonly observedAt: DateTime.Utc
  readonly taskId: string
  readonly taskType: string
  /** The status before (null for a task first seen after the start). */
  readonly from: TaskStatus | null
  /** The status now, or `deleted`. */
  readonly to: TaskStatus | "deleted"
  readonly attempt: number
  readonly workerId: string | null
  readonly error: string | null
  /** Progress, when the handler reported some. */
  readonly progress: unknown
}

/** Options of {@link changes}. */
export interface TailOptions {
  /** Time between rounds (default 1 s). */
  readonly interval?: Duration.DurationInput | undefined
  /** Only changes of this task type. */
  readonly taskType?: string | undefined
  /** Only changes into this status. */
  readonly status?: TaskStatus | undefined
  /** Also report the tasks that exist at the start (as changes from null). Default false. */
  readonly includeExisting?: boolean | undefined
}

interface Known {
  readonly etag: string
  readonly status: TaskStatus
  readonly taskType: string
  readonly progress: string
}

const taskKeyPattern = /^tasks\/[0-9a-f]{1,4}\/([0-9a-f-]{36})\.json$/

/** The stream of task changes, until interrupted. */
export const changes = (options: TailOptions = {}): Stream.Stream<TaskChange, never, Storage | ServerClock> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const storage = yield* Storage
      const clock = yield* ServerClock
      const known = new Map<string, Known>()
      let first = true

      const round = Effect.gen(function*() {
        const listing = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("tasks/")))
        const now = yield* clock.now
        const present = new Set<string>()
        const changed = listing.filter((m) => {
          if (!taskKeyPattern.test(m.key)) return false
          present.add(m.key)
          return known.get(m.key)?.etag !== m.etag
        })
        const read = yield* Effect.forEach(
          changed,
          (m) =>
            storage.get(m.key).pipe(
              Effect.flatMap(Option.match({
                onNone: () => Effect.succeed(Option.none<readonly [string, string, Task]>()),
                onSome: (obj) => Effect.map(decodeTask(m.key, obj.body), (t) => Option.some([m.key, obj.etag, t] as const))
              })),
              // a malformed or vanished object is skipped this round and looked at again next round
              Effect.orElseSucceed(() => Option.none<readonly [string, string, Task]>())
            ),
          { concurrency: 16 }
        )
        const out: Array<TaskChange> = []
        for (const entry of read) {
          if (Option.isNone(entry)) continue
          const [key, etag, task] = entry.value
          const before = known.get(key)
          const progress = JSON.stringify(task.progress ?? null)
          known.set(key, { etag, status: task.status, taskType: task.taskType, progress })
          if (first && options.includeExisting !== true) continue
          if (before !== undefined && before.status === task.status && before.progress === progress) continue
          out.push({
            observedAt: now,
            taskId: task.id,
            taskType: task.taskType,
            from: before?.status ?? null,
            to: task.status,
            attempt: task.attempt,
            workerId: task.workerId,
            error: task.lastError,
            progress: task.progress ?? null
          })
        }
        for (const [key, k] of known) {
          if (present.has(key)) continue
          known.delete(key)
          const id = taskKeyPattern.exec(key)?.[1] ?? key
          out.push({ observedAt: now, taskId: id, taskType: k.taskType, from: k.status, to: "deleted", attempt: 0, workerId: null, error: null, progress: null })
        }
        first = false
        return out.filter((c) =>
          (options.taskType === undefined || c.taskType === options.taskType) &&
          (options.status === undefined || c.to === options.status)
        )
      }).pipe(
        // a failed round (the store blipped) yields nothing; the next round catches up
        Effect.orElseSucceed((): ReadonlyArray<TaskChange> => [])
      )

      return Stream.repeatEffectWithSchedule(round, Schedule.spaced(options.interval ?? Duration.seconds(1))).pipe(
        Stream.flatMap((xs) => Stream.fromIterable(xs))
      )
    })
  )
