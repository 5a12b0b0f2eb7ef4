/**
 * Issue 18 acceptance 6 on RGW: a handler that completes and enqueues 3 children, its worker
 * process SIGKILLed between the completion and the children, ends with exactly 3 children after
 * recovery. The window is made deterministic by the test's own worker script (its storage kills
 * the process once the completing CAS has answered); recovery is the embedded monitor of a second
 * worker process, which then runs the children. Real time; only outcomes are asserted.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import { followUpId } from "../../src/domain/FollowUps.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { readTask } from "../../src/protocol/TaskObjects.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Config } from "../support/s3.js"

const fixture = join(import.meta.dirname, "fixtures", "followups-worker.ts")

const layerFor = (config: S3Storage.S3StorageConfig) => {
  const storage = Layer.scoped(
    Storage,
    Effect.gen(function*() {
      const s = yield* S3Storage.make(config)
      yield* Effect.addFinalizer(() =>
        Stream.runCollect(s.listAll("")).pipe(
          Effect.flatMap((all) => s.deleteMany(Chunk.toReadonlyArray(all).map((o) => o.key))),
          Effect.ignore
        ))
      return s
    })
  )
  return Layer.provideMerge(QueueLayer.layer({ typeCheck: "off" }), Layer.provideMerge(ServerClockLayer.layer, storage))
}

const spawnWorker = (config: S3Storage.S3StorageConfig, env: Record<string, string>) => {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", fixture], {
    env: { ...process.env, BUQUET_TEST_S3: JSON.stringify(config), ...env },
    stdio: ["ignore", "ignore", "inherit"]
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })))
  return { child, exit }
}

const runs = (file: string) =>
  existsSync(file)
    ? readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => {
      const [type, id, attempt, worker] = l.split(" ")
      return { type: type!, id: id!, attempt: Number(attempt), worker: worker! }
    })
    : []

/** Every task whose `parent_id` is `parentId`. */
const childrenOf = (parentId: string) =>
  Effect.gen(function*() {
    const storage = yield* Storage
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(storage.listAll("tasks/")))
    const tasks = yield* Effect.forEach(all, (o) => readTask(o.key), { concurrency: 8 })
    return tasks.flatMap((t) => (Option.isSome(t) && t.value.task.parentId === parentId ? [t.value.task] : []))
  })

const waitUntil = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, maxMs = 150_000, everyMs = 500) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.ceil(maxMs / everyMs); i++) {
      if (yield* check) return
      yield* Effect.sleep(everyMs)
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

describeS3("Follow-ups on RGW (issue 18 acceptance 6)", () => {
  it.live("a worker SIGKILLed between completing and creating its 3 follow-ups: after recovery there are exactly 3, each run once", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-fu-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const parent = yield* queue.submit("order", { n: 3 }, { timeoutSeconds: 4 })
      const doomed = spawnWorker(config, { WORKER_ID: "doomed", HANDLER_LOG: log, KILL_AFTER_COMPLETION: "1" })
      const died = yield* Effect.promise(() => doomed.exit)
      expect(died.signal).toBe("SIGKILL")
      // the crash window: completed with its outbox, no child created
      const stranded = Option.getOrThrow(yield* queue.get(parent.id))
      expect(stranded.status).toBe("completed")
      expect(stranded.followUps?.tasks.length).toBe(3)
      expect(stranded.followUps?.materializedAt).toBeUndefined()
      expect(yield* childrenOf(parent.id)).toEqual([])

      const rescuer = spawnWorker(config, { WORKER_ID: "rescuer", HANDLER_LOG: log })
      try {
        yield* waitUntil("the 3 follow-ups have run", Effect.sync(() => runs(log).filter((r) => r.type === "ship").length >= 3))
        yield* waitUntil("the 3 follow-ups are completed", Effect.map(childrenOf(parent.id), (c) => c.length === 3 && c.every((t) => t.status === "completed")))
      } finally {
        rescuer.child.kill("SIGTERM")
      }
      expect((yield* Effect.promise(() => rescuer.exit)).code).toBe(0)
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
    }).pipe(Effect.provide(layerFor(config)))
  }, 360_000)
})
