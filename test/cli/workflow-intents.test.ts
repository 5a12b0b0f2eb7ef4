/**
 * `buquet workflow signal|cancel|pause|resume|sweep` (issue 18, the CLI's write side), spawned on
 * the embedded store seeded with runs in the reference's shape, and once on RGW with a run started
 * by a connection: what each intent changes is read back with `workflow show --json`; `--json`
 * prints one document; bad input exits 2 with what to write, an unknown run 1, an intent the run's
 * status does not allow 1 with why.
 */
import { describe, expect, it } from "vitest"
import { orchestrateTaskType } from "../../src/domain/workflow/RunKeys.js"
import { connect, Workflow } from "../../src/promise.js"
import { cliEnv, connectOptions, describeS3, prefixesEmptiedAfterAll } from "../support/s3.js"
import { runCli as spawnCli } from "./support.js"
import { seeded } from "./workflow-fixtures.js"

/** The CLI with a long guard: on a loaded machine one spawn can take minutes (no timing is asserted). */
const runCli = (args: ReadonlyArray<string>, options: { readonly cwd?: string; readonly env?: Record<string, string> } = {}) =>
  spawnCli(args, { ...options, timeoutMs: 230_000 })

interface Shown {
  readonly state: { readonly status: string; readonly error?: { readonly type: string; readonly message: string } | null }
  readonly signals: { readonly pending: ReadonlyArray<{ readonly id: string; readonly name: string }> }
}

const show = async (id: string, options: { readonly cwd?: string; readonly env?: Record<string, string> }): Promise<Shown> => {
  const r = await runCli(["workflow", "show", id, "--json"], options)
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as Shown
}

describe("buquet workflow signal / cancel / pause / resume / sweep (embedded store)", () => {
  it("signal stores the payload in the run's inbox (--json names it); bad JSON, a bad name or id exit 2, an unknown run 1", async () => {
    const cwd = seeded()
    const sent = await runCli(["workflow", "signal", "run-b", "approval", "--payload", "{\"ok\":\"yes\"}", "--json"], { cwd })
    expect(sent.code, sent.stderr).toBe(0)
    const doc = JSON.parse(sent.stdout) as { run_id: string; name: string; id: string; created_at: string }
    expect(doc).toMatchObject({ run_id: "run-b", name: "approval" })
    expect(Number.isNaN(Date.parse(doc.created_at))).toBe(false)
    const text = await runCli(["workflow", "signal", "run-b", "nudge"], { cwd })
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^Signal nudge sent to workflow run run-b \(signal [0-9a-f-]{36}\)$/m)
    const shown = await show("run-b", { cwd })
    expect(shown.signals.pending.map((s) => s.name)).toEqual(expect.arrayContaining(["approval", "nudge"]))
    expect(shown.signals.pending.map((s) => s.id)).toContain(doc.id)

    const [badJson, badName, badId, unknown] = await Promise.all([
      runCli(["workflow", "signal", "run-b", "approval", "--payload", "{ok"], { cwd }),
      runCli(["workflow", "signal", "run-b", "no/slash"], { cwd }),
      runCli(["workflow", "signal", "../etc", "approval"], { cwd }),
      runCli(["workflow", "signal", "run-zzz", "approval"], { cwd })
    ])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toContain("--payload is not valid JSON")
    expect(badName.code).toBe(2)
    expect(badName.stderr).toContain("signal name \"no/slash\" is refused")
    expect(badId.code).toBe(2)
    expect(badId.stderr).toContain("\"../etc\" is not a workflow run id")
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("workflow run run-zzz does not exist; list the runs with `buquet workflow list`")
  }, 240_000)

  it("pause keeps the reason, resume runs it again, cancel ends it; an ended run refuses (exit 1), an unknown one exits 1", async () => {
    const cwd = seeded()
    const paused = await runCli(["workflow", "pause", "run-d", "--reason", "maintenance window"], { cwd })
    expect(paused.code, paused.stderr).toBe(0)
    expect(paused.stdout.trim()).toBe("Workflow run run-d paused (status paused)")
    expect((await show("run-d", { cwd })).state).toMatchObject({ status: "paused", error: { type: "Paused", message: "maintenance window" } })
    const resumed = await runCli(["workflow", "resume", "run-d", "--json"], { cwd })
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ id: "run-d", status: "running", error: null })
    const cancelled = await runCli(["workflow", "cancel", "run-d", "-r", "not needed"], { cwd })
    expect(cancelled.code, cancelled.stderr).toBe(0)
    expect(cancelled.stdout.trim()).toBe("Workflow run run-d cancelled (status cancelled)")
    expect((await show("run-d", { cwd })).state).toMatchObject({ status: "cancelled", error: { type: "Cancelled", message: "not needed" } })

    const [cancelDone, resumeFailed, pauseUnknown, cancelBadId] = await Promise.all([
      runCli(["workflow", "cancel", "run-c"], { cwd }),
      runCli(["workflow", "resume", "run-a"], { cwd }),
      runCli(["workflow", "pause", "run-zzz"], { cwd }),
      runCli(["workflow", "cancel", "a b"], { cwd })
    ])
    expect(cancelDone.code).toBe(1)
    expect(cancelDone.stderr).toMatch(/completed.*an ended run stays ended/)
    expect(resumeFailed.code).toBe(1)
    expect(resumeFailed.stderr).toContain("only a paused run can be resumed")
    expect(pauseUnknown.code).toBe(1)
    expect(pauseUnknown.stderr).toContain("workflow run run-zzz does not exist")
    expect(cancelBadId.code).toBe(2)
  }, 240_000)

  it("sweep wakes the stuck runs and says why; --min-age leaves recently changed runs alone; a bad --min-age exits 2", async () => {
    const cwd = seeded()
    // every seeded run changed a minute ago: with --min-age 120 none is old enough
    const [young, youngText] = await Promise.all([
      runCli(["workflow", "sweep", "--min-age", "120", "--json"], { cwd }),
      runCli(["workflow", "sweep", "--min-age", "120"], { cwd })
    ])
    expect(youngText.stdout).toMatch(/^Scanned 5 run\(s\); recovered 0; 3 active run\(s\) changed less than 120 s ago, left for the next pass$/m)
    expect(young.code, young.stderr).toBe(0)
    expect(JSON.parse(young.stdout)).toEqual({ scanned: 5, young: 3, recovered: [] })
    const r = await runCli(["workflow", "sweep", "--min-age", "30"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Scanned 5 run\(s\); recovered 3$/m)
    expect(r.stdout).toMatch(/^ {2}run-b {2}order: step "approve" is running without a task$/m)
    expect(r.stdout).toMatch(/^ {2}run-d {2}order: nothing is in flight and the run is running: its orchestrator task was lost\b/m)
    expect(r.stdout).toMatch(/^ {2}run-e {2}order: step "a" is running without a task$/m)
    // the malformed state is named, not hidden
    expect(r.stderr).toMatch(/workflow\/run-x\/state\.json/)
    // the wake-ups are orchestrator tasks of the runs' workflow
    const tasks = await runCli(["list", "--json"], { cwd })
    expect(tasks.code, tasks.stderr).toBe(0)
    const submitted = (JSON.parse(tasks.stdout) as { tasks: ReadonlyArray<{ task_type: string; input: { workflow_id: string } }> }).tasks
    expect(submitted.map((t) => t.input.workflow_id).sort()).toEqual(["run-b", "run-d", "run-e"])
    expect(new Set(submitted.map((t) => t.task_type))).toEqual(new Set([orchestrateTaskType("order")]))
    const bad = await runCli(["workflow", "sweep", "--min-age", "-5"], { cwd })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("--min-age must be from 0 to 86400 seconds")
  }, 240_000)
})

const freshPrefix = prefixesEmptiedAfterAll()

describeS3("buquet workflow intents on RGW", (s) => {
  it("signal, pause, resume and cancel a run started by a connection; sweep reads the runs", async () => {
    const keyPrefix = freshPrefix(s)
    const env = cliEnv(s, keyPrefix)
    const queue = await connect({ ...connectOptions(s, keyPrefix), quiet: true })
    let id: string
    try {
      // no worker runs it: the run stays pending, so every intent applies
      const wf = Workflow.define("cli-rgw").step("wait", { run: (ctx) => ctx.waitForSignal("go") })
      id = (await queue.workflows.start(wf, { n: 1 })).id
    } finally {
      await queue.close()
    }
    const sent = await runCli(["workflow", "signal", id, "go", "-p", "[1,2]", "--json"], { env })
    expect(sent.code, sent.stderr).toBe(0)
    expect((await show(id, { env })).signals.pending.map((x) => x.id)).toEqual([(JSON.parse(sent.stdout) as { id: string }).id])
    const paused = await runCli(["workflow", "pause", id], { env })
    expect(paused.code, paused.stderr).toBe(0)
    expect((await show(id, { env })).state.status).toBe("paused")
    const resumed = await runCli(["workflow", "resume", id], { env })
    expect(resumed.code, resumed.stderr).toBe(0)
    const cancelled = await runCli(["workflow", "cancel", id, "--json"], { env })
    expect(cancelled.code, cancelled.stderr).toBe(0)
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ id, status: "cancelled" })
    const swept = await runCli(["workflow", "sweep", "--json"], { env })
    expect(swept.code, swept.stderr).toBe(0)
    expect(JSON.parse(swept.stdout)).toEqual({ scanned: 1, young: 0, recovered: [] })
    const unknown = await runCli(["workflow", "cancel", "run-zzz"], { env })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("workflow run run-zzz does not exist")
  }, 240_000)
})
