/**
 * Issue 20 item 7: `connect({ storage })` takes the storage URL the CLI (`--storage`) and the
 * environment (`BUQUET_STORAGE`) take — `s3://BUCKET`, `file://DIR`, `memory` (or `memory:`) — and
 * a bad one is a typed error that says what to write. Before, the option was silently ignored and
 * the connection fell back to whatever else was configured.
 */
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { randomUUID } from "node:crypto"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { BuquetError, connect } from "../../src/promise.js"
import { tempDir } from "../cli/support.js"
import { describeS3 } from "../support/s3.js"

// No store configured by the environment: what connect uses is what its storage option says.
const saved = new Map<string, string>()
beforeEach(() => {
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(S3_|BUQUET_)/.test(name) && value !== undefined) {
      saved.set(name, value)
      delete process.env[name]
    }
  }
})
afterEach(() => {
  for (const [name, value] of saved) process.env[name] = value
  saved.clear()
})

const rejection = (p: Promise<unknown>): Promise<BuquetError> =>
  p.then(() => expect.fail("connect should have rejected"), (e: unknown) => {
    expect(e).toBeInstanceOf(BuquetError)
    return e as BuquetError
  })

describe("connect({ storage })", () => {
  it("\"memory:\" (and \"memory\") is a fresh in-memory store: nothing is written to the working directory", async () => {
    for (const storage of ["memory:", "memory"]) {
      const cwd = tempDir()
      const queue = await connect({ storage, cwd, quiet: true })
      try {
        const task = await queue.submit("job", { n: 1 })
        expect((await queue.get(task.id))?.input).toEqual({ n: 1 })
        // each connection has its own
        const second = await connect({ storage, cwd, quiet: true })
        expect(await second.get(task.id)).toBeUndefined()
        await second.close()
      } finally {
        await queue.close()
      }
      expect(readdirSync(cwd)).toEqual([])
    }
  })

  it("\"file:///abs/dir\" is the embedded file store in that directory", async () => {
    const dir = join(tempDir(), "store")
    const queue = await connect({ storage: `file://${dir}`, cwd: tempDir(), quiet: true })
    let id: string
    try {
      id = (await queue.submit("job", { n: 2 })).id
    } finally {
      await queue.close()
    }
    expect(existsSync(join(dir, "tasks"))).toBe(true)
    const again = await connect({ directory: dir, quiet: true })
    try {
      expect((await again.get(id))?.input).toEqual({ n: 2 })
    } finally {
      await again.close()
    }
  })

  it("a bad URL rejects with InvalidConfig naming the option and the forms it takes", async () => {
    for (const storage of ["ftp://host/x", "s3://Not_A_Bucket", "memroy", ""]) {
      const e = await rejection(connect({ storage, cwd: tempDir(), quiet: true }))
      expect(e._tag).toBe("InvalidConfig")
      expect(e.message).toContain("connect({ storage })")
      expect(e.message).toContain("\"s3://BUCKET\", \"file://DIR\" or \"memory\"")
    }
  })

  it("storage with bucket, directory or memory rejects: both say where tasks live", async () => {
    for (const other of [{ bucket: "jobs" }, { directory: tempDir() }, { memory: true }]) {
      const e = await rejection(connect({ storage: "memory:", ...other, cwd: tempDir(), quiet: true }))
      expect(e._tag).toBe("InvalidConfig")
      expect(e.message).toContain(`give storage or ${Object.keys(other)[0]}, not both`)
    }
  })
})

describeS3("connect({ storage: \"s3://BUCKET\" }) on RGW", (s) => {
  it("uses that bucket (with the endpoint and credentials given beside it)", async () => {
    const common = {
      endpoint: s.endpoint,
      region: s.region,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      keyPrefix: `test/${randomUUID()}/`,
      cwd: tempDir(),
      quiet: true
    }
    const queue = await connect({ storage: `s3://${s.bucket}`, ...common })
    const other = await connect({ bucket: s.bucket, ...common })
    try {
      const task = await queue.submit("job", { n: 3 })
      expect((await other.get(task.id))?.input).toEqual({ n: 3 })
      expect(await queue.delete(task.id)).toBe(true)
    } finally {
      await queue.close()
      await other.close()
    }
  }, 60_000)
})
