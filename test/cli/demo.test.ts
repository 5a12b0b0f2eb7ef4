/**
 * `npm run demo` on a fresh checkout (issue 7, acceptance 1): the committed tree (`git archive
 * HEAD`, what a clone gets: no dist/, no .buquet/, no work in progress) is unpacked in an empty
 * directory with node_modules linked as `npm ci` would make it, and `npm run demo` runs there with no S3 settings: it uses a directory of its own,
 * ./.buquet-demo (issue 16 item 17: the demo's tasks stay out of the project's ./.buquet queue),
 * shows progress, ends with the summary table and a hint that names that store, and exits 0.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, rmSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { root, tempDir } from "./support.js"

const checkout = tempDir("buquet-fresh-")
afterAll(() => rmSync(checkout, { recursive: true, force: true }))

it("npm run demo on a fresh checkout finishes with the summary on ./.buquet-demo", () => {
  execFileSync("sh", ["-c", `git archive --format=tar HEAD | tar -x -C '${checkout}'`], { cwd: root })
  symlinkSync(join(root, "node_modules"), join(checkout, "node_modules"))

  const home = tempDir("buquet-home-")
  const r = spawnSync("npm", ["run", "--silent", "demo"], {
    cwd: checkout,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, XDG_CONFIG_HOME: join(home, ".config") },
    encoding: "utf8",
    timeout: 110_000
  })
  expect(r.status, r.stderr).toBe(0)
  expect(r.stderr).toContain(`using the embedded file store ${join(checkout, ".buquet-demo")}`)
  // a progress line per second (stdout is not a TTY here), then the summary
  expect(r.stdout).toMatch(/^\s+\d+s {2}pending \d+ · running \d+ · completed \d+ · failed \d+ · cancelled \d+ · attempts \d+$/m)
  expect(r.stdout).toMatch(/^demo\.flaky\s+fails once or twice, then succeeds\s+4\s+completed 4\s+10\s/m)
  expect(r.stdout).toMatch(/^demo\.report\s+scheduled a few seconds ahead\s+3\s+completed 3\s/m)
  expect(r.stdout).toMatch(/^demo\.exhausted\s+.*failed 1\s+3\s/m)
  expect(r.stdout).toMatch(/^demo\.invalid\s+.*failed 1\s+1\s/m)
  expect(r.stdout).toMatch(/^demo\.cancelled\s+.*cancelled 1\s+0\s/m)
  expect(r.stdout).toMatch(/^total\s+18\s+completed 15, failed 2, cancelled 1\s+25$/m)
  expect(r.stdout).toMatch(/All 18 tasks finished in \d+\.\ds/)
  expect(r.stdout).toContain("buquet list --storage file://.buquet-demo")
  expect(existsSync(join(checkout, ".buquet-demo"))).toBe(true)
  expect(existsSync(join(checkout, ".buquet"))).toBe(false)
})
