/**
 * A virtual runtime for the simulation: Effect's `Clock` and `Scheduler` replaced by ones the
 * simulation drives, so a run is deterministic and fast. Fibers run to quiescence (every fiber
 * suspended on a sleep or a wait), then time jumps to the next sleep that is due. TestClock does
 * the same but polls every fiber with real timers at each step, which costs milliseconds per
 * wake-up; here a wake-up costs what the woken code does.
 *
 * @module
 */
import { Clock, Duration, Effect, Exit } from "effect"
import type { Scheduler } from "effect/Scheduler"

interface Timer {
  readonly at: number
  readonly seq: number
  readonly wake: () => void
  cancelled: boolean
}

/** A binary heap of timers by (at, seq): equal instants fire in the order they were set. */
class TimerHeap {
  private readonly items: Array<Timer> = []
  get size() {
    return this.items.length
  }
  push(t: Timer) {
    const a = this.items
    a.push(t)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (before(a[p]!, a[i]!)) break
      ;[a[p], a[i]] = [a[i]!, a[p]!]
      i = p
    }
  }
  pop(): Timer | undefined {
    const a = this.items
    if (a.length === 0) return undefined
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && before(a[l]!, a[m]!)) m = l
        if (r < a.length && before(a[r]!, a[m]!)) m = r
        if (m === i) break
        ;[a[m], a[i]] = [a[i]!, a[m]!]
        i = m
      }
    }
    return top
  }
}

const before = (x: Timer, y: Timer) => x.at < y.at || (x.at === y.at && x.seq < y.seq)

/** Runs `program` on virtual time and a run-to-quiescence scheduler; resolves with its exit. */
export const runVirtual = <A, E>(program: Effect.Effect<A, E>, startMillis = 0): Promise<Exit.Exit<A, E>> => {
  let now = startMillis
  let seq = 0
  let zeroSleeps = 0
  const timers = new TimerHeap()
  const tasks: Array<() => void> = []

  const trace = process.env["SIM_TRACE"] !== undefined
  const sleep = (duration: Duration.Duration) =>
    Effect.async<void>((resume) => {
      const millis = Math.max(0, Duration.toMillis(duration))
      if (millis === 0) zeroSleeps++
      // whole milliseconds, like a real clock (fractions would let `due - now` loops spin on rounding)
      const timer: Timer = { at: Math.ceil(now + (Number.isFinite(millis) ? millis : 1e15)), seq: seq++, wake: () => resume(Effect.void), cancelled: false }
      timers.push(timer)
      return Effect.sync(() => {
        timer.cancelled = true
      })
    })
  // SIM_TRACE: name the span of every 100,000th zero sleep (a loop that never waits)
  const tracedSleep = (duration: Duration.Duration) =>
    Duration.toMillis(duration) === 0 && (zeroSleeps + 1) % 100000 === 0
      ? Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
        Effect.zipRight(Effect.sync(() => console.error("zero sleep in span", span._tag === "Some" ? span.value.name : "-")), sleep(duration)))
      : sleep(duration)

  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(Math.floor(now * 1_000_000)),
    currentTimeNanos: Effect.sync(() => BigInt(Math.floor(now * 1_000_000))),
    sleep: trace ? tracedSleep : sleep
  } as Clock.Clock

  const scheduler: Scheduler = {
    shouldYield: () => false,
    scheduleTask: (task) => {
      tasks.push(task)
    }
  }

  return new Promise<Exit.Exit<A, E>>((resolve) => {
    const fiber = Effect.runFork(program.pipe(Effect.withClock(clock), Effect.withScheduler(scheduler)), { scheduler })
    let done: Exit.Exit<A, E> | undefined
    fiber.addObserver((exit) => {
      done = exit
    })
    let idle = 0
    let events = 0
    let idles = 0
    const drive = async () => {
      for (let rounds = 0; rounds < 2000 && done === undefined; rounds++) {
        // FIFO; tasks scheduled meanwhile run after this batch
        while (tasks.length > 0) for (const task of tasks.splice(0)) task()
        if (done !== undefined) break
        // A promise that has already settled (an `Effect.promise` over work that finished, such
        // as @effect/workflow's SHA-256 of an execution id, see sim.ts) resumes its fiber from a
        // microtask: let those run before time moves on, or the fiber would wake minutes later.
        await undefined
        if (tasks.length > 0) continue
        let timer = timers.pop()
        while (timer !== undefined && timer.cancelled) timer = timers.pop()
        if (timer === undefined) {
          // nothing runnable and nothing due: wait for outside work (a real promise), then look again
          if (trace && ++idles % 1000 === 0) console.error(`virtual: idle ${idles} at t=${(now / 1000).toFixed(1)} s`)
          if (++idle > 10_000) return resolve(Exit.die(new Error("virtual runtime: deadlock (no fiber can run, no timer is set)")))
          setImmediate(start)
          return
        }
        idle = 0
        now = Math.max(now, timer.at)
        if (trace && ++events % 20000 === 0) console.error(`virtual: ${events} wake-ups, t=${(now / 1000).toFixed(1)} s, ${timers.size} timers`)
        timer.wake()
      }
      if (done !== undefined) resolve(done)
      // let real promises (if any) settle between batches
      else setImmediate(start)
    }
    const start = () => void drive()
    start()
  })
}
