/**
 * Issue 18 acceptance 6 on RGW: a handler that completes and enqueues 3 children, its worker
 * process SIGKILLed between the completion and the children, ends with exactly 3 children after
 * recovery. The window is made deterministic by the test's own worker script (its storage kills
 * the process once the completing CAS has answered); recovery is the embedded monitor of a second
 * worker process, which then runs the children. Real time; only outcomes are asserted.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { followUpId } from "../../src/domain/FollowUps.js"
import type * as S3Storage from "../../src/layers/S3Storage.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { logLines, spawnScoped, terminateEffect, waitUntil } from "../support/processes.js"
import { describeS3, s3Config, s3QueueLayer } from "../support/s3.js"

const fixture = join(import.meta.dirname, "fixtures", "crash-worker.ts")

const spawnWorker = (config: S3Storage.S3StorageConfig, env: Record<string, string>) =>
  spawnScoped(fixture, { BUQUET_TEST_S3: JSON.stringify(config), CONCURRENCY: "4", ...env })

const runs = (file: string) => logLines(file).map(([type, id, attempt, worker]) => ({ type: type!, id: id!, attempt: Number(attempt), worker: worker! }))

/** Every task whose `parent_id` is `parentId`. */
const childrenOf = (parentId: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("tasks/")))
    const tasks = yield* Effect.forEach(all, (o) => readTask(o.key), { concurrency: 8 })
    return tasks.flatMap((t) => (Option.isSome(t) && t.value.task.parentId === parentId ? [t.value.task] : []))
  })

describeS3("Follow-ups on RGW (issue 18 acceptance 6)", () => {
  it.live("a worker SIGKILLed between completing and creating its 3 follow-ups: after recovery there are exactly 3, each run once", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-fu-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const parent = yield* queue.submit("order", { n: 3 }, { timeoutSeconds: 4 })
      const doomed = yield* spawnWorker(config, { WORKER_ID: "doomed", HANDLER_LOG: log, KILL_AT: "completion" })
      const died = yield* Effect.promise(() => doomed.exit)
      expect(died.signal).toBe("SIGKILL")
      // the crash window: completed with its outbox, no child created
      const stranded = Option.getOrThrow(yield* queue.get(parent.id))
      expect(stranded.status).toBe("completed")
      expect(stranded.followUps?.tasks.length).toBe(3)
      expect(stranded.followUps?.materializedAt).toBeUndefined()
      expect(yield* childrenOf(parent.id)).toEqual([])

      const rescuer = yield* spawnWorker(config, { WORKER_ID: "rescuer", HANDLER_LOG: log })
      yield* waitUntil("the 3 follow-ups have run", Effect.sync(() => runs(log).filter((r) => r.type === "ship").length >= 3), 150_000, 500)
      yield* waitUntil("the 3 follow-ups are completed", Effect.map(childrenOf(parent.id), (c) => c.length === 3 && c.every((t) => t.status === "completed")), 150_000, 500)
      expect((yield* terminateEffect(rescuer)).code).toBe(0)
      const children = yield* childrenOf(parent.id)
      expect(children.map((c) => c.id).sort()).toEqual([0, 1, 2].map((i) => followUpId(parent.id, i)).sort())
      expect(children.map((c) => c.output).sort((a, b) => (a as { shipped: number }).shipped - (b as { shipped: number }).shipped))
        .toEqual([{ shipped: 0 }, { shipped: 1 }, { shipped: 2 }])
      const done = Option.getOrThrow(yield* queue.get(parent.id))
      expect(done.status).toBe("completed")
      expect(done.followUps?.materializedAt).toBeDefined()
      const log_ = runs(log)
      // the parent ran once (by the killed worker); each child ran once, by the rescuer
      expect(log_.filter((r) => r.type === "order").map((r) => r.worker)).toEqual(["doomed"])
      expect(log_.filter((r) => r.type === "ship").map((r) => r.id).sort()).toEqual(children.map((c) => c.id).sort())
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config, { typeCheck: "off" })))
  }, 360_000)
})
