/**
 * `buquet completions bash|zsh|fish` print scripts the shells accept (issue 7, acceptance 4).
 * zsh and fish are checked where installed (CI installs them); bash always.
 */
import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli, tempDir } from "./support.js"

const has = (shell: string): boolean => spawnSync("sh", ["-c", `command -v ${shell}`], { stdio: "ignore" }).status === 0

describe("completions", () => {
  for (const shell of ["bash", "zsh", "fish"] as const) {
    it.skipIf(!has(shell))(`${shell}: the script passes \`${shell} -n\` and knows the commands`, async () => {
      const r = await runCli(["completions", shell])
      expect(r.code, r.stderr).toBe(0)
      for (const command of ["submit", "migrate-shards", "doctor"]) expect(r.stdout).toContain(command)
      const file = join(tempDir(), `buquet.${shell}`)
      writeFileSync(file, r.stdout)
      const check = spawnSync(shell, ["-n", file], { encoding: "utf8" })
      expect(check.status, check.stderr).toBe(0)
    })
  }
})
