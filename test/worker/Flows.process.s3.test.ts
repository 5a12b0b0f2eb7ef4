/**
 * Flows on RGW, the crash window (issue 18): a worker process SIGKILLed right after the CAS that
 * completed a flow's child, before it told the parent. The child keeps its lease marker; a second
 * worker process's embedded monitor tells the parent once the lease has ended, the parent becomes
 * due and runs exactly once, reading all its children's results. The window is made deterministic
 * by the test's own worker script (its storage kills the process once that CAS has answered).
 * Real time; only outcomes are asserted.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { waitingAvailableAt } from "../../src/domain/Flows.js"
import type * as S3Storage from "../../src/layers/S3Storage.js"
import { Queue } from "../../src/services/Queue.js"
import { logLines, spawnScoped, terminateEffect, waitUntil } from "../support/processes.js"
import { describeS3, s3Config, s3QueueLayer } from "../support/s3.js"

const fixture = join(import.meta.dirname, "fixtures", "crash-worker.ts")

const spawnWorker = (config: S3Storage.S3StorageConfig, env: Record<string, string>) =>
  spawnScoped(fixture, { BUQUET_TEST_S3: JSON.stringify(config), CONCURRENCY: "1", ...env })

const runs = (file: string) => logLines(file).map(([type, id, attempt, worker]) => ({ type: type!, id: id!, attempt: Number(attempt), worker: worker! }))

describeS3("Flows on RGW: a worker killed between a child's end and telling its parent", () => {
  it.live("the second worker's monitor tells the parent; it runs once and reads every child", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-flows-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const created = yield* queue.flow(flowNode("parent", {}, {
        children: [1, 2, 3].map((n) => flowNode("child", { n }, { options: { timeoutSeconds: 4 } }))
      }))
      const doomed = yield* spawnWorker(config, { WORKER_ID: "doomed", HANDLER_LOG: log, KILL_AT: "child-end" })
      const died = yield* Effect.promise(() => doomed.exit)
      expect(died.signal).toBe("SIGKILL")
      // the crash window: one child completed and not reported, the parent still waiting
      const ended = yield* Effect.forEach(created.children, (c) => Effect.map(queue.get(c.id), Option.getOrThrow))
      const stranded = ended.filter((t) => t.status === "completed")
      expect(stranded.length).toBe(1)
      expect(stranded[0]!.parentWaits?.notifiedAt).toBeUndefined()
      const waiting = Option.getOrThrow(yield* queue.get(created.id))
      expect(waiting.availableAt).toEqual(waitingAvailableAt)
      expect(waiting.flow?.children.every((c) => c.outcome === undefined)).toBe(true)

      const rescuer = yield* spawnWorker(config, { WORKER_ID: "rescuer", HANDLER_LOG: log })
      yield* waitUntil("the parent is completed", Effect.map(queue.get(created.id), (p) => Option.getOrThrow(p).status === "completed"), 150_000, 500)
      expect((yield* terminateEffect(rescuer)).code).toBe(0)
      const done = Option.getOrThrow(yield* queue.get(created.id))
      expect(done.status).toBe("completed")
      expect(done.output).toEqual({ sum: 60, statuses: ["completed", "completed", "completed"] })
      expect(Option.getOrThrow(yield* queue.get(stranded[0]!.id)).parentWaits?.notifiedAt).toBeDefined()
      const ran = runs(log)
      // the parent ran once, by the rescuer; each child ran once (the stranded one by the doomed worker)
      expect(ran.filter((r) => r.type === "parent").map((r) => r.worker)).toEqual(["rescuer"])
      const childRuns = ran.filter((r) => r.type === "child")
      expect(childRuns.map((r) => r.id).sort()).toEqual(created.children.map((c) => c.id).sort())
      expect(childRuns.find((r) => r.id === stranded[0]!.id)?.worker).toBe("doomed")
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config, { typeCheck: "off" })))
  }, 360_000)
})
