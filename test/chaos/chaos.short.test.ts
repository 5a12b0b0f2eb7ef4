/**
 * The chaos short form in CI (issue 10): 3 worker processes on the real server, random SIGKILLs
 * and restarts, 10 % injected storage failures, 200 tasks. It fails if a task is lost (not
 * terminal at the end) or executed twice without a kill or an injected fault to explain it.
 * The run itself is `bench/chaos.ts --short`, spawned so its worker processes are its own.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import os from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import type { ChaosResult } from "../../bench/chaos.js"
import { describeS3 } from "../support/s3.js"
import { track } from "../support/processes.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

describeS3("chaos short form on RGW", (s3) => {
  it("200 tasks, 3 SIGKILLs, 10 % injected failures: nothing lost, every duplicate explained", async () => {
    const dir = mkdtempSync(join(os.tmpdir(), "buquet-chaos-test-"))
    const out = join(dir, "result.json")
    try {
      // asynchronous, so the vitest worker keeps answering its RPCs during the run
      const run = await new Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, ["--import", "tsx", "bench/chaos.ts", "--short", `--json=${out}`], {
          cwd: root,
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...process.env,
            S3_ENDPOINT: s3.endpoint,
            S3_BUCKET: s3.bucket,
            S3_REGION: s3.region,
            AWS_ACCESS_KEY_ID: s3.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.secretAccessKey
          }
        })
        // stopped after the test (SIGTERM, then SIGKILL) if it is still running then: test/support/setup.ts
        track(child)
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
        const timer = setTimeout(() => child.kill("SIGTERM"), 280_000)
        child.on("close", (status, signal) => {
          clearTimeout(timer)
          done({ status, signal, stdout, stderr })
        })
      })
      const verdict = run.stdout.trim().split("\n").at(-1) ?? ""
      console.log(verdict)
      if (run.status !== 0 && run.status !== 1) {
        expect.fail(`chaos run did not finish (exit ${run.status}, signal ${run.signal}): ${run.stderr.split("\n").slice(-10).join("\n")}`)
      }
      const result = JSON.parse(readFileSync(out, "utf8")) as ChaosResult
      expect(result.tasks).toBe(200)
      expect(result.kills).toBe(3)
      expect(result.lostIds).toEqual([])
      expect(result.lost).toBe(0)
      expect(result.duplicates.unexplainedIds).toEqual([])
      expect(result.completed + result.failed + result.otherTerminal).toBe(200)
      expect(result.verdict).toBe("PASS")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)
})
