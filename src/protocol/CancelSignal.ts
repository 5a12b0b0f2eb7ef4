/**
 * The cancel signal (issue 20 item 6): one small object per worker, `control/cancel/{worker_id}`,
 * that a cancel touches right after it marks a running task `cancel_requested`. The worker that
 * runs the task HEADs its own signal once per check and HEADs its running tasks only when the
 * signal's ETag changed, so noticing a cancel costs one request per check whatever the number of
 * running tasks (instead of one HEAD per task every 2 s).
 *
 * Only the ETag matters; the body (`{"task_id", "requested_at"}`) is there for a person looking at
 * the bucket. The task is marked first and the signal touched second: a worker that sees the touch
 * then finds the mark. A touch that never lands (a crash in between, a failed PUT, the reference's
 * cancel, which does not know the signal) is caught by the slow check every running task still
 * makes of its own (and by any write to the task, e.g. a lease extension, which the mark makes fail).
 *
 * @module
 */
import { DateTime, Effect, Schema } from "effect"
import { utf8 } from "../domain/Codec.js"
import { cancelSignalKey } from "../domain/Keys.js"
import { WorkerId } from "../domain/Names.js"
import type { Task } from "../domain/Task.js"
import type { StorageService } from "../services/Storage.js"

export { cancelSignalKey }

/**
 * Touches the signal of the worker running `task` (its `worker_id`). Never fails: the cancel is
 * already recorded in the task, and a lost touch only delays its notice to the worker's slow check.
 * A `worker_id` that cannot name a key (written by another tool) is skipped for the same reason.
 */
export const touchCancelSignal = (storage: StorageService, task: Task, now: DateTime.Utc): Effect.Effect<void> =>
  task.workerId === null || !Schema.is(WorkerId)(task.workerId)
    ? Effect.void
    : storage.put(
      cancelSignalKey(task.workerId),
      utf8(JSON.stringify({ task_id: task.id, requested_at: DateTime.formatIso(now) }))
    ).pipe(
      Effect.tapError((e) =>
        Effect.logWarning(
          `task ${task.id}: cancel recorded, but the signal to worker ${task.workerId} failed (${e.message}); ` +
            "the worker notices it at its next slow check of the task"
        )
      ),
      Effect.ignore,
      Effect.withSpan("CancelSignal.touch")
    )
