/**
 * A worker's local deadline for a lease (invariant 5): the lease's end minus the ServerClock's
 * uncertainty (1 s while it is unknown) and a safety margin. The handler is interrupted there,
 * and a transient storage error is retried only until there.
 *
 * @module
 */
import { Duration, Effect } from "effect"
import { writeMarker } from "../../protocol/TaskObjects.js"
import type { ServerClockService } from "../../services/ServerClock.js"

/** The default safety margin kept before a lease's end, on top of the clock's uncertainty. */
export const defaultSafetyMargin: Duration.Duration = Duration.millis(500)

/** The local deadline (server epoch ms) of a lease ending at `leaseEndMillis`. */
export const localDeadline = (
  clock: ServerClockService,
  leaseEndMillis: number,
  safetyMargin: Duration.Duration
): Effect.Effect<number> =>
  Effect.map(clock.estimate, (est) => {
    const uncertainty = Duration.isFinite(est.uncertainty) ? Duration.toMillis(est.uncertainty) : 1000
    return leaseEndMillis - uncertainty - Duration.toMillis(safetyMargin)
  })

/**
 * After deleting `markers` that no one but the lease holder could write again before the lease's
 * local `deadline` (server epoch ms): if the DELETE was answered after it, it may have landed
 * after a newer writer's marker at the same key, so the markers are written again.
 */
export const rewriteIfLate = (clock: ServerClockService, markers: ReadonlyArray<string>, deadline: number) =>
  Effect.gen(function*() {
    if ((yield* clock.currentTimeMillis) <= deadline) return
    yield* Effect.forEach(markers, (marker) => writeMarker(marker), { discard: true }).pipe(
      Effect.catchAll((e) => Effect.logWarning(`a late marker DELETE may have removed a newer marker; writing it again failed: ${e.message}`))
    )
  })
