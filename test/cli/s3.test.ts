/**
 * The CLI against the real RGW server (issue 7, acceptance 2 and 3): spawned `buquet` processes,
 * each test under a fresh key prefix of the shared bucket.
 */
import { randomUUID } from "node:crypto"
import { expect, it } from "vitest"
import { describeS3 } from "../support/s3.js"
import type { S3Settings } from "../support/s3.js"
import { runCli } from "./support.js"

const envFor = (s: S3Settings, bucket: string, keyPrefix: string): Record<string, string> => ({
  S3_ENDPOINT: s.endpoint,
  S3_BUCKET: bucket,
  AWS_REGION: s.region,
  AWS_ACCESS_KEY_ID: s.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
  BUQUET_KEY_PREFIX: keyPrefix
})

describeS3("buquet CLI on RGW", (s) => {
  it("doctor passes on the unversioned bucket", async () => {
    const r = await runCli(["doctor"], { env: envFor(s, s.bucket, `test/${randomUUID()}/`) })
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/✓ create-only write/)
    expect(r.stdout).toMatch(/✓ compare-and-swap/)
    expect(r.stdout).toMatch(/✓ CAS race: 4 concurrent If-Match writes: exactly one won/)
    expect(r.stdout).not.toContain("✗")
  })

  it.skipIf(s.bucketVersioned === undefined)("doctor on the versioned bucket says conditional writes are not enforced and exits 1", async () => {
    const r = await runCli(["doctor", "--json"], { env: envFor(s, s.bucketVersioned!, `test/${randomUUID()}/`) })
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout.split("\n{\"error\"")[0]!) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string }> }
    expect(report.ok).toBe(false)
    const versioning = report.checks.find((c) => c.name === "versioning")
    expect(versioning?.status).toBe("fail")
    expect(versioning?.detail).toMatch(/conditional writes are not enforced/)
    expect(r.stderr).toMatch(/^buquet: doctor found a problem/)
  })

  it("submit → get → history → list filters → cancel by type with per-task outcomes", async () => {
    const env = envFor(s, s.bucket, `test/${randomUUID()}/`)
    const submit = async (type: string, extra: ReadonlyArray<string> = []) => {
      const r = await runCli(["submit", "-t", type, "-i", "{\"n\":1}", "--json", ...extra], { env })
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { id: string; status: string }).id
    }
    const a = await submit("alpha")
    const b = await submit("alpha", ["--delay", "1h"])
    const c = await submit("beta", ["--priority", "5"])

    const get = await runCli(["get", a], { env })
    expect(get.code, get.stderr).toBe(0)
    expect(get.stdout).toMatch(/status\s+pending/)
    expect(get.stdout).toMatch(/input\s+\{"n":1\}/)

    const list = await runCli(["list", "--type", "alpha", "--status", "pending", "--json"], { env })
    expect(list.code, list.stderr).toBe(0)
    const ids = (JSON.parse(list.stdout) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id).sort()
    expect(ids).toEqual([a, b].sort())

    const cancel = await runCli(["cancel", "--type", "alpha", "--reason", "test", "--json"], { env })
    expect(cancel.code, cancel.stderr).toBe(0)
    const outcomes = JSON.parse(cancel.stdout) as Array<{ task_id: string; outcome: string }>
    expect(outcomes.map((o) => [o.task_id, o.outcome]).sort()).toEqual([[a, "cancelled"], [b, "cancelled"]].sort())

    const again = await runCli(["cancel", a, c], { env })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain(`${a}  already_terminal`)
    expect(again.stdout).toContain(`${c}  cancelled`)

    const history = await runCli(["history", a], { env })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stdout).toMatch(/\(new\) → pending/)
    expect(history.stdout).toMatch(/pending → cancelled/)

    const cancelled = await runCli(["list", "--status", "cancelled", "--type", "beta", "--json"], { env })
    expect((JSON.parse(cancelled.stdout) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)).toEqual([c])

    const missing = await runCli(["get", randomUUID()], { env })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/does not exist; check the id/)
  })
})
