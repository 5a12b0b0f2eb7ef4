/**
 * `submit` of a type no worker has ever registered (issue 20 item 1) warns once, on stderr: its
 * stdout is the result, and `submit --json` must stay one JSON document a script can parse. The
 * CLI's terminal-safe logger (issue 16 item 11) printed the library's warning a second time, on
 * stdout, in front of the JSON.
 */
import { describe, expect, it } from "vitest"
import { runCli, tempDir } from "./support.js"

describe("submit's unhandled-type warning", () => {
  it("is one stderr line; stdout stays the result, --json parses", async () => {
    const cwd = tempDir()
    const json = await runCli(["submit", "-t", "sned_email", "-i", "{\"to\":\"a\"}", "--json"], { cwd })
    expect(json.code, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ task_type: "sned_email", status: "pending" })
    expect(json.stderr.match(/no worker has ever registered a handler for task type "sned_email"/g)).toHaveLength(1)

    const plain = await runCli(["submit", "-t", "sned_email2", "-i", "{}"], { cwd })
    expect(plain.code, plain.stderr).toBe(0)
    expect(plain.stdout).not.toContain("no worker has ever registered")
    expect(plain.stdout).toMatch(/^Task submitted: [0-9a-f-]{36}\n$/)
    expect(plain.stderr.match(/no worker has ever registered a handler for task type "sned_email2"/g)).toHaveLength(1)
  }, 60_000)
})
