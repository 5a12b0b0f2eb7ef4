/**
 * Schedules fire only while a scheduler runs (issue 16 item 5): `schedule create`, `list` and `show`
 * say so when nobody holds the scheduler's leader lease (`control/leader/scheduler.json` unexpired by
 * the queue's clock), pointing to `buquet worker --scheduler` / `buquet schedule run`, and `show`
 * calls a next run in the past overdue. With a held lease they stay quiet. Spawned CLI on the
 * embedded store, whose objects the test writes directly (a lease, a schedule active since 2020).
 */
import { describe, expect, it } from "vitest"
import { dailySchedule, heldSchedulerLease, putObject, runCli, tempDir } from "./support.js"

const noScheduler = /no scheduler is running.*buquet worker --scheduler.*buquet schedule run/s

describe("schedules without a scheduler", () => {
  it("create, list and show say that no scheduler runs; show calls a past next run overdue", async () => {
    const fresh = tempDir()
    const old = tempDir()
    putObject(old, "schedules/nightly.json", dailySchedule("nightly"))
    const [created, shown, shownJson] = await Promise.all([
      runCli(["schedule", "create", "s1", "-t", "report", "-c", "@hourly"], { cwd: fresh }),
      runCli(["schedule", "show", "nightly"], { cwd: old }),
      runCli(["schedule", "show", "nightly", "--json"], { cwd: old })
    ])
    expect(created.code, created.stderr).toBe(0)
    expect(created.stderr).toMatch(noScheduler)
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/next run\s+\d{4}-\d{2}-\d{2}T00:00:00(\.000)?Z \(overdue/)
    expect(shown.stderr).toMatch(noScheduler)
    expect(shownJson.code, shownJson.stderr).toBe(0)
    const json = JSON.parse(shownJson.stdout) as { scheduler_running: boolean; overdue: boolean }
    expect(json.scheduler_running).toBe(false)
    expect(json.overdue).toBe(true)
    const listed = await runCli(["schedule", "list"], { cwd: fresh })
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toMatch(/s1/)
    expect(listed.stderr).toMatch(noScheduler)
  }, 120_000)

  it("stay quiet while a scheduler holds the lease", async () => {
    const cwd = tempDir()
    putObject(cwd, "control/leader/scheduler.json", heldSchedulerLease())
    putObject(cwd, "schedules/nightly.json", dailySchedule("nightly"))
    const [listed, shown] = await Promise.all([
      runCli(["schedule", "list"], { cwd }),
      runCli(["schedule", "show", "nightly", "--json"], { cwd })
    ])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stderr).not.toMatch(/no scheduler/)
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stderr).not.toMatch(/no scheduler/)
    expect((JSON.parse(shown.stdout) as { scheduler_running: boolean }).scheduler_running).toBe(true)
  }, 120_000)
})
