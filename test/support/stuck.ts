/**
 * Guards for waits that TestClock cannot move: a fiber that waits for a sleep on a TestClock that
 * nobody adjusts any more (a scope's finalizer awaiting such a fiber, typically) hangs until
 * vitest's timeout, and then the hook that interrupts the test hangs too. These turn such a hang
 * into a failure that names what was waited for, after a bound on REAL time (the live clock):
 * nothing here asserts a duration — a wait that can progress ends in microseconds, the bound
 * only decides how soon a stuck one is reported.
 *
 * @module
 */
import { Duration, Effect, Exit, Fiber, Layer, Scope, TestServices } from "effect"

/** How long, in real time, a guarded wait may take before it is reported as stuck. */
export const stuckAfter: Duration.Duration = Duration.seconds(20)

/** Awaits `fiber`; dies naming `what` if it has not ended within `bound` of real time (the fiber is left running). */
export const awaitOrFail = <A, E>(fiber: Fiber.Fiber<A, E>, what: string, bound: Duration.DurationInput = stuckAfter) =>
  Fiber.await(fiber).pipe(
    Effect.timeout(bound),
    TestServices.provideLive,
    Effect.catchTag("TimeoutException", () =>
      Effect.dieMessage(`stuck: ${what} did not finish within ${Duration.format(bound)} of real time (a fiber waiting for a TestClock that nobody adjusts?)`))
  )

/**
 * Closes `scope`; dies naming `what` when the close does not finish within `bound` of real time.
 * The close runs in a daemon fiber, so a stuck finalizer is left behind instead of holding the test.
 */
export const closeOrFail = (scope: Scope.CloseableScope, exit: Exit.Exit<unknown, unknown>, what: string, bound?: Duration.DurationInput) =>
  Effect.flatMap(Effect.forkDaemon(Scope.close(scope, exit)), (closing) => Effect.asVoid(awaitOrFail(closing, what, bound)))

/**
 * `Effect.provide(layer)`, with the layer's scope closed by {@link closeOrFail}: a test whose
 * finalizers cannot finish fails naming `what` instead of hanging.
 */
export const provideOrFail = <ROut, E2, RIn>(layer: Layer.Layer<ROut, E2, RIn>, what: string) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, RIn | Exclude<R, ROut>> =>
  Effect.acquireUseRelease(
    Scope.make(),
    (scope) => Effect.flatMap(Layer.buildWithScope(layer, scope), (context) => Effect.provide(self, context)),
    (scope, exit) => Effect.interruptible(closeOrFail(scope, exit, what))
  )
