/**
 * Invalid input to every command exits 2 with a one-line message that says what to do
 * (issue 7, acceptance 7). Runs on the embedded file store: bad input is refused before any I/O.
 * Each case spawns its own CLI in its own directory, so they run concurrently (vitest's
 * maxConcurrency): the spawns are CPU-bound and one at a time left the second core idle.
 */
import { describe, expect, it } from "vitest"
import { runCli, tempDir } from "./support.js"

const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, RegExp]> = [
  ["submit: bad JSON", ["submit", "-t", "x", "-i", "{bad"], /--input is not valid JSON/],
  ["submit: bad duration", ["submit", "-t", "x", "--delay", "5 fortnights"], /--delay: .*unknown unit/],
  ["submit: bad RFC 3339", ["submit", "-t", "x", "--at", "tomorrow"], /--at: "tomorrow" is not an RFC 3339 time/],
  ["submit: missing type", ["submit", "-i", "{}"], /task-type/],
  ["submit: hostile type", ["submit", "-t", "../etc", "-i", "{}"], /task type/],
  ["list: unknown status", ["list", "--status", "done"], /--status: "done" is not a task status; use one of pending, /],
  ["get: missing id", ["get"], /Missing argument <task-id>/],
  ["get: malformed id", ["get", "not-an-id"], /task id/],
  ["history: missing id", ["history"], /Missing argument <task-id>/],
  ["cancel: nothing to cancel", ["cancel"], /give task ids or --type/],
  ["replay: malformed id", ["replay", "../x"], /task id/],
  ["archive: missing id", ["archive"], /Missing argument/],
  ["schema validate: bad JSON", ["schema", "validate", "x", "--input", "[1,"], /--input is not valid JSON/],
  ["migrate-shards: same lengths", ["migrate-shards", "--from", "2", "--to", "2"], /--from and --to must differ/],
  ["migrate-shards: out of range", ["migrate-shards", "--from", "1", "--to", "9"], /--to must be a shard prefix length from 1 to 4/],
  ["tail: unknown status", ["tail", "--status", "nope"], /--status: "nope" is not a task status/],
  ["completions: unknown shell", ["completions", "tcsh"], /Expected one of the following cases: bash, zsh, fish/],
  ["config: bad storage flag", ["config", "show", "--storage", "ftp://x"], /--storage: "ftp:\/\/x" is not allowed/],
  ["unknown command", ["frobnicate"], /unknown command "frobnicate"; see `buquet --help` for the commands/],
  ["bad shard prefix flag", ["list", "--shard-prefix-len", "9"], /--shard-prefix-len: .*an integer from 1 to 4/]
]

describe.concurrent("invalid input exits 2 with one line", () => {
  for (const [name, args, pattern] of cases) {
    it(name, async () => {
      const r = await runCli(args, { cwd: tempDir() })
      expect(r.code, r.stderr).toBe(2)
      // the embedded-store notice is its own line; the error is exactly one more
      const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("buquet: no bucket configured;"))
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(/^buquet: /)
      expect(lines[0]).toMatch(pattern)
    })
  }
})

// `--log-level` (Effect's built-in option) goes wherever a user types it: the parser took it only
// before the command's own options, and `list --limit 1 --log-level debug` was "unknown argument 'debug'"
describe.concurrent("--log-level anywhere on the command line", () => {
  for (const args of [
    ["--log-level", "debug", "list", "--limit", "1"],
    ["list", "--log-level", "debug", "--limit", "1"],
    ["list", "--limit", "1", "--log-level", "debug"],
    ["list", "--limit", "1", "--log-level=debug"]
  ]) {
    it(`buquet ${args.join(" ")}`, async () => {
      const r = await runCli(args, { cwd: tempDir() })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^ID\s+TYPE\s+STATUS/)
    })
  }

  it("a bad level still exits 2, naming the levels", async () => {
    const r = await runCli(["list", "--limit", "1", "--log-level", "loud"], { cwd: tempDir() })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/loud/)
  })
})
