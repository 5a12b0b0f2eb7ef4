/**
 * `buquet workflow list|show` (issue 18, the CLI's read side), spawned on the embedded store with
 * runs stored in the reference's shape (`workflow/{id}/state.json`, `signals/{name}/{ts}_{uuid}.json`):
 * status, progress and age in the list, `--status` and `--json`; each step's status, attempts and
 * error and the signals pending/consumed in `show`; a malformed state is named on stderr while the
 * rest of the list still prints; bad input exits 2, an unknown run 1; a running step whose task
 * type is paused is named with the command that resumes it.
 */
import { describe, expect, it } from "vitest"
import { runCli as spawnCli } from "./support.js"
import { seeded, sig1, sig2 } from "./workflow-fixtures.js"

/** The CLI with a long guard: on a loaded machine one spawn can take minutes (no timing is asserted). */
const runCli = (args: ReadonlyArray<string>, options: { readonly cwd?: string } = {}) => spawnCli(args, { ...options, timeoutMs: 230_000 })

describe("buquet workflow list / show (embedded store)", () => {
  it("lists the runs with status, workflow, progress and age; names the malformed one and goes on", async () => {
    const cwd = seeded()
    const r = await runCli(["workflow", "list"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^ID\s+WORKFLOW\s+STATUS\s+STEPS DONE\s+AGE\s+UPDATED$/)
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 5))).toEqual([
      ["run-a", "order", "failed", "1/2", "3"],
      ["run-b", "order", "waiting_signal", "1/2", "3"],
      ["run-c", "order", "completed", "1/1", "3"],
      ["run-d", "order", "running", "1/4", "3"],
      ["run-e", "order", "running", "0/1", "3"]
    ])
    expect(r.stderr).toContain("skipped 1 malformed object(s)")
    expect(r.stderr).toMatch(/workflow\/run-x\/state\.json: .*run-elsewhere.*run-x/)
  }, 240_000)

  it("--status filters, --json is one document; a bad --status or --limit exits 2", async () => {
    const cwd = seeded()
    const [failed, json, bad, badLimit] = await Promise.all([
      runCli(["workflow", "list", "--status", "failed"], { cwd }),
      runCli(["workflow", "list", "--json", "--status", "waiting_signal"], { cwd }),
      runCli(["workflow", "list", "--status", "done"], { cwd }),
      runCli(["workflow", "list", "--limit", "0"], { cwd })
    ])
    expect(failed.code, failed.stderr).toBe(0)
    expect(failed.stdout).toContain("run-a")
    expect(failed.stdout).not.toContain("run-b")
    expect(json.code, json.stderr).toBe(0)
    const doc = JSON.parse(json.stdout) as ReadonlyArray<Record<string, unknown>>
    expect(doc).toEqual([expect.objectContaining({
      id: "run-b",
      type: "order",
      status: "waiting_signal",
      definition_hash: "sha256:0123456789abcdef",
      progress: { completed: 1, total: 2 },
      error: null
    })])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--status: "done" is not a workflow status; use one of pending, running, waiting_signal/)
    expect(badLimit.code).toBe(2)
    expect(badLimit.stderr).toContain("--limit must be from 1 to 100000")
  }, 240_000)

  it("show: each step's status, attempts and error, the run's error, signals pending and consumed", async () => {
    const cwd = seeded()
    const [a, b, d] = await Promise.all(["run-a", "run-b", "run-d"].map((id) => runCli(["workflow", "show", id], { cwd })))
    // with the recorded definition: every step in dependency order, the skipped one named so
    expect(d!.code, d!.stderr).toBe(0)
    expect(d!.stdout).toMatch(/^steps done\s+1\/4$/m)
    expect(d!.stdout.split("\n").filter((l) => /^[a-d]\s/.test(l)).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ["a", "completed"],
      ["b", "failed"],
      ["d", "pending"],
      ["c", "skipped"]
    ])
    expect(a!.code, a!.stderr).toBe(0)
    expect(a!.stdout).toMatch(/^status\s+failed$/m)
    expect(a!.stdout).toMatch(/^error\s+StepFailed: step charge failed \(step charge\)$/m)
    expect(a!.stdout).toMatch(/^reserve\s+completed\s+1\s+-\s+-$/m)
    // a stored error's line break stays on one table line
    expect(a!.stdout).toMatch(/^charge\s+failed\s+3\s+11111111-1111-4111-8111-111111111111\s+card declined by the bank$/m)
    expect(b!.code, b!.stderr).toBe(0)
    expect(b!.stdout).toMatch(/^signals\s+1 pending, 1 consumed$/m)
    expect(b!.stdout).toMatch(new RegExp(`^  pending\\s+approval\\s+2026-12-06T10:05:00.000Z\\s+${sig2.slice(25)}$`, "m"))
    expect(b!.stdout).toMatch(new RegExp(`^  consumed\\s+approval\\s+2026-12-06T10:00:00.000Z\\s+${sig1.slice(25)}$`, "m"))
  }, 240_000)

  it("show --json: the stored state, the step rows and the signals", async () => {
    const cwd = seeded()
    const r = await runCli(["workflow", "show", "run-b", "--json"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout) as {
      state: { id: string; status: string; signals: unknown }
      progress: unknown
      steps: ReadonlyArray<{ name: string; status: string; attempt: number }>
      signals: { pending: ReadonlyArray<{ id: string }>; consumed: ReadonlyArray<{ id: string }> }
    }
    expect(doc.state.id).toBe("run-b")
    expect(doc.state.status).toBe("waiting_signal")
    expect(doc.state.signals).toEqual({ approval: { cursor: `${sig1}.json` } })
    expect(doc.progress).toEqual({ completed: 1, total: 2 })
    expect(doc.steps.map((s) => [s.name, s.status, s.attempt])).toEqual([["reserve", "completed", 1], ["approve", "running", 1]])
    expect(doc.signals.pending.map((s) => s.id)).toEqual([sig2.slice(25)])
    expect(doc.signals.consumed.map((s) => s.id)).toEqual([sig1.slice(25)])
  }, 240_000)

  it("an unknown run exits 1, a bad id and a malformed state say what is wrong", async () => {
    const cwd = seeded()
    const [unknown, badId, malformed] = await Promise.all([
      runCli(["workflow", "show", "run-zzz"], { cwd }),
      runCli(["workflow", "show", "../etc"], { cwd }),
      runCli(["workflow", "show", "run-x"], { cwd })
    ])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("workflow run run-zzz does not exist; list the runs with `buquet workflow list`")
    expect(badId.code).toBe(2)
    expect(badId.stderr).toContain("\"../etc\" is not a workflow run id")
    expect(malformed.code).toBe(1)
    expect(malformed.stderr).toMatch(/workflow\/run-x\/state\.json is malformed/)
  }, 240_000)

  it("show says which running step a pause switch holds, and how to resume it", async () => {
    const cwd = seeded()
    const paused = await runCli(["pause", "workflow.step:order:approve"], { cwd })
    expect(paused.code, paused.stderr).toBe(0)
    const [b, bJson, e] = await Promise.all([
      runCli(["workflow", "show", "run-b"], { cwd }),
      runCli(["workflow", "show", "run-b", "--json"], { cwd }),
      runCli(["workflow", "show", "run-e"], { cwd })
    ])
    expect(b.code, b.stderr).toBe(0)
    expect(b.stdout).toMatch(/^held\s+step approve waits: its task type workflow\.step:order:approve is paused \(buquet resume workflow\.step:order:approve\)$/m)
    expect(bJson.code, bJson.stderr).toBe(0)
    expect((JSON.parse(bJson.stdout) as { held_by_pause: unknown }).held_by_pause).toEqual([{ step: "approve", task_type: "workflow.step:order:approve" }])
    // a step of another task type is not held by that switch
    expect(e.code, e.stderr).toBe(0)
    expect(e.stdout).not.toMatch(/^held/m)
    const all = await runCli(["pause"], { cwd })
    expect(all.code, all.stderr).toBe(0)
    const eAll = await runCli(["workflow", "show", "run-e"], { cwd })
    expect(eAll.stdout).toMatch(/^held\s+step a waits: the queue is paused \(buquet resume\)$/m)
  }, 240_000)
})
