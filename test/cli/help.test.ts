/**
 * `--help` (issue 16 item 15): no placeholder text ("A user-defined piece of text."), no
 * `--wizard`, and no ANSI escapes when piped. Spawned CLI, a spread of commands at once.
 */
import { describe, expect, it } from "vitest"
import { runCli } from "./support.js"

const commands: ReadonlyArray<ReadonlyArray<string>> = [
  [],
  ["submit"],
  ["list"],
  ["schedule", "show"],
  ["worker"],
  ["dashboard"]
]

describe("--help", () => {
  it("has no placeholder descriptions, no --wizard and no escapes when piped", async () => {
    const results = await Promise.all(commands.map((c) => runCli([...c, "--help"])))
    for (const [i, r] of results.entries()) {
      const what = `buquet ${commands[i]!.join(" ")} --help`
      expect(r.code, `${what}: ${r.stderr}`).toBe(0)
      expect(r.stdout, what).toMatch(/USAGE/)
      expect(r.stdout, what).not.toContain("A user-defined piece of text")
      expect(r.stdout, what).not.toContain("--wizard")
      expect(r.stdout, what).not.toContain("\u001b")
    }
  }, 150_000)
})
