/**
 * `buquet schedule create` accepts the cron macros (issue 16 item 5): `@hourly`, `@daily`,
 * `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`, with the next runs they mean; an
 * unknown macro is a usage error listing them. Spawned CLI on the embedded store.
 */
import { describe, expect, it } from "vitest"
import { runCli, tempDir } from "./support.js"

const expected: ReadonlyArray<readonly [string, RegExp]> = [
  ["@hourly", /^\d{4}-\d{2}-\d{2}T\d{2}:00:00(\.000)?Z$/],
  ["@daily", /^\d{4}-\d{2}-\d{2}T00:00:00(\.000)?Z$/],
  ["@midnight", /^\d{4}-\d{2}-\d{2}T00:00:00(\.000)?Z$/],
  ["@weekly", /^\d{4}-\d{2}-\d{2}T00:00:00(\.000)?Z$/],
  ["@monthly", /^\d{4}-\d{2}-01T00:00:00(\.000)?Z$/],
  ["@yearly", /^\d{4}-01-01T00:00:00(\.000)?Z$/],
  ["@annually", /^\d{4}-01-01T00:00:00(\.000)?Z$/]
]

describe("schedule create with cron macros", () => {
  it("accepts every macro, with the next runs it means", async () => {
    const cwd = tempDir()
    const results = await Promise.all(
      expected.map(([macro]) => runCli(["schedule", "create", `s-${macro.slice(1)}`, "-t", "report", "-c", macro, "--json"], { cwd }))
    )
    for (const [i, [macro, shape]] of expected.entries()) {
      const r = results[i]!
      expect(r.code, `${macro}: ${r.stderr}`).toBe(0)
      const out = JSON.parse(r.stdout) as { schedule: { cron: string }; next_runs: ReadonlyArray<string> }
      expect(out.schedule.cron).toBe(macro)
      expect(out.next_runs.length).toBeGreaterThan(0)
      for (const run of out.next_runs) expect(run, macro).toMatch(shape)
      if (macro === "@weekly") for (const run of out.next_runs) expect(new Date(run).getUTCDay()).toBe(0)
    }
  }, 120_000)

  it("an unknown macro is a usage error that lists the macros", async () => {
    const r = await runCli(["schedule", "create", "s", "-t", "report", "-c", "@often"])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/@often.*@hourly, @daily/)
  })
})
