/**
 * The buquet workflow engine on the real RGW server across worker processes (issue 18 acceptances 1
 * and 2, real-server halves): the `order` workflow (three activities, a DurableClock on the
 * delayed-task path, a DurableDeferred completed from this process) finishes although the process
 * running "charge" is SIGKILLed mid-activity; every activity completes once, and `execute`/`poll`
 * return the result. The `trip` workflow's failing "pay" runs both compensations in reverse order,
 * once each, although the process running the first of them is SIGKILLed. Real time; only
 * outcomes are asserted.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { DurableDeferred } from "@effect/workflow"
import { Cause, Chunk, Effect, Exit, Option, Stream } from "effect"
import { Storage } from "../../src/services/Storage.js"
import { logLines, spawnScoped, terminateEffect, waitUntil } from "../support/processes.js"
import { describeS3, s3Config } from "../support/s3.js"
import { layerFor } from "./fixtures/layer.js"
import { Approval, Order } from "./fixtures/order.js"
import { Trip } from "./fixtures/trip.js"

const fixture = join(import.meta.dirname, "fixtures", "worker.ts")

const lines = (file: string): ReadonlyArray<string> => logLines(file).map((l) => l.join(" "))

const count = (file: string, event: string) => logLines(file).filter((l) => l[0] === event).length

/** Deletes the suite's objects when its scope closes. */
const cleanupAtEnd = Effect.addFinalizer(() =>
  Effect.flatMap(Storage, (s) =>
    Stream.runCollect(s.listAll("")).pipe(Effect.flatMap((all) => s.deleteMany(Chunk.toReadonlyArray(all).map((o) => o.key))))).pipe(Effect.ignore))

describeS3("BuquetWorkflowEngine across worker processes on RGW", () => {
  it.live("a worker SIGKILLed in the middle of an activity: another process finishes the workflow, each activity completes once", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-wf-")), "effects.log")
    const base = { BUQUET_TEST_S3: JSON.stringify(config), EFFECT_LOG: log }
    return Effect.gen(function*() {
      yield* cleanupAtEnd
      // both processes are stopped when the scope closes, however the test ends (SIGKILL after a grace)
      const doomed = yield* spawnScoped(fixture, { ...base, WORKER_ID: "doomed", BLOCK_CHARGE: "1" })
      const executionId = yield* Order.executionId({ id: "p1" })
      yield* Order.execute({ id: "p1" }, { discard: true })
      yield* waitUntil("charge started in the doomed process", Effect.sync(() => count(log, "charge-start") >= 1), 90_000, 200)
      doomed.child.kill("SIGKILL")
      yield* Effect.promise(() => doomed.exit)
      const survivor = yield* spawnScoped(fixture, { ...base, WORKER_ID: "survivor" })
      yield* waitUntil("charge done after the lease ran out", Effect.sync(() => count(log, "charge-done") >= 1), 90_000, 200)
      // the approval comes from this process, which runs no worker
      yield* DurableDeferred.succeed(Approval, { token: DurableDeferred.tokenFromExecutionId(Approval, { workflow: Order, executionId }), value: "erin" })
      yield* waitUntil("the result is recorded", Effect.map(Order.poll(executionId), (r) => r !== undefined), 60_000, 500)
      const polled = yield* Order.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isSuccess(polled.exit) ? polled.exit.value : polled).toBe("reserve-p1|charge-p1|erin|ship-p1")
      expect(yield* Order.execute({ id: "p1" })).toBe("reserve-p1|charge-p1|erin|ship-p1")
      expect({ reserve: count(log, "reserve-done"), charge: count(log, "charge-done"), ship: count(log, "ship-done") })
        .toEqual({ reserve: 1, charge: 1, ship: 1 })
      expect(lines(log).filter((l) => l.endsWith("-done doomed"))).toEqual(["reserve-done doomed"])
      expect(lines(log)).toContain("charge-done survivor")
      expect((yield* terminateEffect(survivor)).code).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(layerFor(config, 6)))
  }, 180_000)

  it.live("withCompensation: the process running the compensations is SIGKILLed; another runs both, in reverse order, once each", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-wf-")), "effects.log")
    const base = { BUQUET_TEST_S3: JSON.stringify(config), EFFECT_LOG: log }
    return Effect.gen(function*() {
      yield* cleanupAtEnd
      const doomed = yield* spawnScoped(fixture, { ...base, WORKER_ID: "doomed", BLOCK_UNDO: "1" })
      const executionId = yield* Trip.executionId({ id: "k1" })
      yield* Trip.execute({ id: "k1" }, { discard: true })
      yield* waitUntil("the first compensation started in the doomed process", Effect.sync(() => count(log, "undo-hotel-start") >= 1), 90_000, 200)
      doomed.child.kill("SIGKILL")
      yield* Effect.promise(() => doomed.exit)
      const survivor = yield* spawnScoped(fixture, { ...base, WORKER_ID: "survivor" })
      yield* waitUntil("the result is recorded", Effect.map(Trip.poll(executionId), (r) => r !== undefined), 60_000, 500)
      const polled = yield* Trip.poll(executionId)
      expect(polled?._tag === "Complete" && Exit.isFailure(polled.exit) ? Cause.failureOption(polled.exit.cause) : polled)
        .toEqual(Option.some("pay refused"))
      expect(lines(log).filter((l) => l.includes("-done"))).toEqual([
        "flight-done doomed",
        "hotel-done doomed",
        "pay-done doomed",
        "undo-hotel-done survivor",
        "undo-flight-done survivor"
      ])
      expect((yield* terminateEffect(survivor)).code).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(layerFor(config, 6)))
  }, 120_000)
})
