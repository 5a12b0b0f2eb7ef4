/**
 * Issue 18 acceptance 4 on RGW: 100 runs of a 5-step DAG (`five`: a -> b, c -> d -> e) with 4
 * worker processes started as a user would, 3 of them SIGKILLed at random moments while steps
 * run. All 100 complete; no step's handler starts once its result is recorded (each handler
 * HEADs its step's result object when it starts and logs what it found); a step whose handler
 * finished more than once did so only in processes that were killed before the result was
 * recorded; and the DAG sweeper (run by this process every 5 s, as `buquet workflow sweep` would
 * be) reports which runs it recovered, each with the task that showed it stuck, which was last
 * run by a killed process. The workers' embedded monitors recover the killed processes' leases.
 * Real time; only outcomes are asserted.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Effect, Option, Random, Ref, Schedule } from "effect"
import type { RecoveredRun } from "../../src/programs/DagSweeper.js"
import * as DagWorkflow from "../../src/programs/DagWorkflow.js"
import { logLines, spawnScoped, terminateEffect, waitUntil } from "../support/processes.js"
import { describeS3, s3Config, s3QueueLayer } from "../support/s3.js"
import { Five } from "./fixtures/dag-worker.js"

const fixture = join(import.meta.dirname, "fixtures", "dag-worker.ts")

const RUNS = 100
const STEPS = ["a", "b", "c", "d", "e"]

describeS3("DAG workflows across worker processes on RGW (issue 18 acceptance 4)", () => {
  it.live("100 runs × 5 steps, 4 worker processes, 3 SIGKILLed at random: all complete, no step runs after its result is recorded, the sweeper says which runs it recovered", () => {
    const config = s3Config()
    const log = join(mkdtempSync(join(tmpdir(), "buquet-dag-")), "effects.log")
    const lines = () => logLines(log)
    return Effect.gen(function*() {
      // stopped when the scope closes, however the test ends (SIGTERM, then SIGKILL after a grace)
      const workers = yield* Effect.forEach([0, 1, 2, 3], (i) =>
        spawnScoped(fixture, { DAG_WORKER: "1", BUQUET_TEST_S3: JSON.stringify(config), WORKER_ID: `w${i}`, EFFECT_LOG: log }))
      const killed = new Set<string>()
      const recovered = yield* Ref.make<ReadonlyArray<RecoveredRun>>([])
      const ids = Array.from({ length: RUNS }, (_, i) => `five-${i}`)
      yield* Effect.forEach(ids, (id, i) => DagWorkflow.start(Five, { n: i }, { id }), { concurrency: 16, discard: true })
      // the sweeper, beside the workers (their monitors leave it to us)
      yield* DagWorkflow.sweep({ minAge: "8 seconds" }).pipe(
        Effect.flatMap((r) => Ref.update(recovered, (l) => [...l, ...r.recovered])),
        Effect.catchAll((e) => Effect.logWarning(`sweep failed: ${e.message}`)),
        // every 5 s: each pass reads every run (1 LIST + 100 GET), load the workers compete with
        Effect.repeat(Schedule.spaced("5 seconds")),
        Effect.forkScoped
      )
      // three SIGKILLs, each once a random number of step handlers has started, of a random live worker
      const moments = (yield* Effect.forEach([0, 1, 2], () => Random.nextIntBetween(20, 300))).sort((a, b) => a - b)
      for (const moment of moments) {
        yield* waitUntil(`${moment} step handlers started`, Effect.sync(() => lines().filter((l) => l[0] === "start").length >= moment), 90_000, 50)
        const alive = [0, 1, 2, 3].filter((i) => !killed.has(`w${i}`))
        const victim = alive[yield* Random.nextIntBetween(0, alive.length)]!
        workers[victim]!.child.kill("SIGKILL")
        yield* Effect.promise(() => workers[victim]!.exit)
        killed.add(`w${victim}`)
      }
      yield* waitUntil("every run is completed", Effect.map(DagWorkflow.list({ limit: 1000 }), (p) => p.runs.length === RUNS && p.runs.every((r) => r.state.status === "completed")), 240_000, 5000)
      yield* Effect.forEach(workers, (w) => terminateEffect(w), { concurrency: "unbounded", discard: true })
      const page = yield* DagWorkflow.list({ limit: 1000 })
      expect(page.runs.filter((r) => r.state.status !== "completed").map((r) => `${r.state.id} ${r.state.status}`)).toEqual([])
      expect(page.runs.length).toBe(RUNS)
      const all = lines()
      // no handler started when its step's result was already recorded
      expect(all.filter((l) => l[0] === "start" && l[6] === "true").map((l) => l.join(" "))).toEqual([])
      for (const run of page.runs) {
        for (const step of STEPS) {
          const result = Option.getOrThrow(yield* DagWorkflow.stepResult(Five, run.state.id, step as "a"))
          const dones = all.filter((l) => l[0] === "done" && l[1] === run.state.id && l[2] === step)
          expect(dones.length, `${run.state.id} ${step}`).toBeGreaterThanOrEqual(1)
          // more than one finished run of a step: all but the recorded one were in processes killed before recording it
          const recordedBy = result.split("@")[1]!
          const others = dones.filter((l) => l[5] !== recordedBy || dones.filter((d) => d[5] === recordedBy).length > 1)
          expect(others.filter((l) => !killed.has(l[5]!)).map((l) => l.join(" ")), `${run.state.id} ${step}`).toEqual([])
        }
      }
      // the sweeper's report: each recovered run is named with the task that showed it stuck, which a
      // killed process had claimed (a later line of that task may be its retry, once its lease ended)
      // or which no process ever started
      const report = yield* Ref.get(recovered)
      const runsRecovered = [...new Set(report.map((r) => r.workflowId))].sort()
      yield* Effect.log(`killed ${[...killed].join(", ")}; the sweeper recovered ${runsRecovered.length} run(s): ` +
        [...new Map(report.map((r) => [r.workflowId, r.reason])).entries()].map(([id, reason]) => `${id} (${reason})`).join("; "))
      for (const r of report) {
        const touched = all.filter((l) => l[1] === r.workflowId)
        const evidence = r.taskId === undefined ? touched : touched.filter((l) => (l[0] === "orch" ? l[2] : l[4]) === r.taskId)
        const by = evidence.map((l) => (l[0] === "orch" ? l[3]! : l[5]!))
        // no line at all: its claimer died between the claim and the handler's first line, and only
        // killed processes die (the others log at once and run to the end)
        expect(by.length === 0 || by.some((w) => killed.has(w)), `${r.workflowId}: ${r.reason}; its task ran in ${by.join(", ")}`).toBe(true)
      }
    }).pipe(Effect.scoped, Effect.provide(s3QueueLayer(config)))
  }, 420_000)
})
