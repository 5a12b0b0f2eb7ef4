/**
 * The running tasks' timers in one fiber per worker: each task's local deadline (its handler is
 * stopped there, invariant 5) and its fallback check (a cancel whose signal never landed,
 * every `cancelFallbackInterval`). A fiber per running task sleeping until its own deadline cost
 * ~60 fiber-runtime steps per task (its fork, its sleep, its interruption at the task's end);
 * here a task costs a Set entry and a comparison.
 *
 * The wheel's fiber sleeps (Effect's `Clock`, so `TestClock` drives it) until the earliest due
 * time it knew of when it went to sleep. A timer registered or moved earlier than that wakes it;
 * one registered later does not, and a timer removed leaves it sleeping: at a wake-up it looks at
 * every timer (a worker runs at most its concurrency of them), fires those due and sleeps again.
 * Times are the ServerClock's (server epoch ms), as the deadlines are.
 *
 * @module
 */
import { Deferred, Duration, Effect, Scope } from "effect"

/** A registered task's timer. */
export interface TaskTimer {
  /** Moves the deadline (server epoch ms): after a lease extension. */
  readonly setDeadline: (deadline: number) => Effect.Effect<void>
}

/** What a task registers. */
export interface TimerSpec {
  /** The local deadline (server epoch ms). */
  readonly deadline: number
  /** Run once, in the wheel's fiber, when the deadline has passed: keep it short (complete a Deferred). */
  readonly onDeadline: Effect.Effect<void>
  /** The fallback check's interval (ms; the first check comes one interval after registering). */
  readonly checkEveryMillis: number
  /** The fallback check, forked into the registering Scope (a slow check never delays a deadline). */
  readonly check: Effect.Effect<void>
}

/** The worker's timers. */
export interface DeadlineWheel {
  /** Registers a running task's timer for the life of the current Scope (the task's attempt). */
  readonly register: (spec: TimerSpec) => Effect.Effect<TaskTimer, never, Scope.Scope>
  /** How many timers are registered (for tests). */
  readonly size: Effect.Effect<number>
}

interface Entry {
  deadline: number
  nextCheck: number
  readonly spec: TimerSpec
  readonly scope: Scope.Scope
}

/**
 * Starts the wheel's fiber in the current Scope (the worker's: it ends with the worker).
 * `currentTimeMillis` is the ServerClock's.
 */
export const make = (currentTimeMillis: Effect.Effect<number>): Effect.Effect<DeadlineWheel, never, Scope.Scope> =>
  Effect.gen(function*() {
    const entries = new Set<Entry>()
    const fiberId = yield* Effect.fiberId
    // What the fiber sleeps until (-Infinity while it is awake: it will look at every timer
    // anyway), and what ends its sleep early.
    let sleepingUntil = Number.NEGATIVE_INFINITY
    let wake = Deferred.unsafeMake<void>(fiberId)
    const wakeBefore = (due: number) =>
      Effect.suspend(() => due < sleepingUntil ? Deferred.succeed(wake, undefined) : Effect.void)

    /**
     * Takes what is due at `now` out (deadlines passed, checks to fork), and goes to sleep until
     * the next due time of what is left: all at once, so a timer registered meanwhile either is
     * seen here or compares itself with the new sleep.
     */
    const turn = (now: number) => {
      const fired: Array<Effect.Effect<void>> = []
      let next = Number.POSITIVE_INFINITY
      for (const entry of entries) {
        if (now >= entry.deadline) {
          entries.delete(entry)
          fired.push(entry.spec.onDeadline)
          continue
        }
        if (now >= entry.nextCheck) {
          entry.nextCheck = now + entry.spec.checkEveryMillis
          fired.push(Effect.asVoid(Effect.forkIn(entry.spec.check, entry.scope)))
        }
        next = Math.min(next, entry.deadline, entry.nextCheck)
      }
      wake = Deferred.unsafeMake<void>(fiberId)
      sleepingUntil = next
      return { fired, next, woken: wake }
    }

    const loop = Effect.gen(function*() {
      while (true) {
        const now = yield* currentTimeMillis
        const { fired, next, woken } = yield* Effect.sync(() => turn(now))
        if (fired.length > 0) yield* Effect.all(fired, { discard: true })
        yield* next === Number.POSITIVE_INFINITY
          ? Deferred.await(woken)
          : Effect.raceFirst(Effect.sleep(Duration.millis(next - now)), Deferred.await(woken))
        sleepingUntil = Number.NEGATIVE_INFINITY
      }
    })
    yield* Effect.forkScoped(loop)

    const register = (spec: TimerSpec): Effect.Effect<TaskTimer, never, Scope.Scope> =>
      Effect.flatMap(Effect.scope, (scope) =>
        Effect.flatMap(currentTimeMillis, (now) => {
          const entry: Entry = { deadline: spec.deadline, nextCheck: now + spec.checkEveryMillis, spec, scope }
          const timer: TaskTimer = {
            setDeadline: (deadline) =>
              Effect.suspend(() => {
                entry.deadline = deadline
                return entries.has(entry) ? wakeBefore(deadline) : Effect.void
              })
          }
          // the finalizer first: a timer is never left behind by an interruption in between
          return Effect.as(
            Effect.zipRight(
              Scope.addFinalizer(scope, Effect.sync(() => entries.delete(entry))),
              Effect.suspend(() => {
                entries.add(entry)
                return wakeBefore(Math.min(entry.deadline, entry.nextCheck))
              })
            ),
            timer
          )
        }))

    return { register, size: Effect.sync(() => entries.size) } satisfies DeadlineWheel
  })
