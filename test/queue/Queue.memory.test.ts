import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Queue } from "../../src/services/Queue.js"
import { withQueue } from "./support/harness.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import { queueSuite } from "./suite.js"

queueSuite({ name: "MemoryStorage + TestClock", realServer: false, storage: () => MemoryStorage.layer() })

describe("Queue: history on a versioned bucket", () => {
  it.effect("lists the stored versions too, newest first, decoded", () =>
    withQueue({ name: "versioned", realServer: false, storage: () => MemoryStorage.layer({ versioning: true }) })(
      Effect.gen(function*() {
        const queue = yield* Queue
        const task = yield* queue.submit("t", 1)
        yield* queue.cancel(task.id)
        yield* queue.archive(task.id)
        const h = yield* queue.history(task.id)
        expect(h.events.map((e) => e.to)).toEqual(["pending", "cancelled", "archived"])
        expect(h.versions.map((v) => v.task?.status)).toEqual(["archived", "cancelled", "pending"])
        expect(h.versions[0]!.isLatest).toBe(true)
      })
    ))
})
