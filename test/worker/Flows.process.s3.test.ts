/**
 * Flows on RGW, the crash window (issue 18): a worker process SIGKILLed right after the CAS that
 * completed a flow's child, before it told the parent. The child keeps its lease marker; a second
 * worker process's embedded monitor tells the parent once the lease has ended, the parent becomes
 * due and runs exactly once, reading all its children's results. The window is made deterministic
 * by the test's own worker script (its storage kills the process once that CAS has answered).
 * Real time; only outcomes are asserted.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import { flowNode } from "../../src/domain/FlowRequest.js"
import { waitingAvailableAt } from "../../src/domain/Flows.js"
import * as QueueLayer from "../../src/layers/Queue.js"
import * as S3Storage from "../../src/layers/S3Storage.js"
import * as ServerClockLayer from "../../src/layers/ServerClock.js"
import { Queue } from "../../src/services/Queue.js"
import { Storage } from "../../src/services/Storage.js"
import { describeS3, s3Config } from "../support/s3.js"

const fixture = join(import.meta.dirname, "fixtures", "flows-worker.ts")

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

describeS3("Flows on RGW: a worker killed between a child's end and telling its parent", () => {
  it.live("the second worker's monitor tells the parent; it runs once and reads every child", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-flows-")), "handlers.log")
    return Effect.gen(function*() {
      const queue = yield* Queue
      const created = yield* queue.flow(flowNode("parent", {}, {
        children: [1, 2, 3].map((n) => flowNode("child", { n }, { options: { timeoutSeconds: 4 } }))
      }))
      const doomed = spawnWorker(config, { WORKER_ID: "doomed", HANDLER_LOG: log, KILL_AFTER_CHILD_END: "1" })
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

      const rescuer = spawnWorker(config, { WORKER_ID: "rescuer", HANDLER_LOG: log })
      try {
        for (let i = 0; i < 300; i++) {
          const p = Option.getOrThrow(yield* queue.get(created.id))
          if (p.status === "completed") break
          yield* Effect.sleep("500 millis")
        }
      } finally {
        rescuer.child.kill("SIGTERM")
      }
      expect((yield* Effect.promise(() => rescuer.exit)).code).toBe(0)
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
    }).pipe(Effect.provide(layerFor(config)))
  }, 360_000)
})
