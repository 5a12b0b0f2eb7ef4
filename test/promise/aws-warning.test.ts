/**
 * The library keeps the AWS SDK's Node-version warning off its users' stderr (issue 16 item 17),
 * as the CLI does, unless the user set `AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED` themselves.
 * A spawned Node process connects to the real S3 server through `buquet/promise`'s sources.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import { root } from "../cli/support.js"

const script = `
const { connect } = await import(${JSON.stringify(pathToFileURL(join(root, "src", "promise.ts")).href)})
const queue = await connect({ quiet: true })
await queue.close()
console.log("connected")
`

const connectWith = (extra: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> => {
  const env: Record<string, string> = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...extra }
  for (const [k, v] of Object.entries(process.env)) if ((k.startsWith("S3_") || k.startsWith("AWS_")) && v !== undefined) env[k] = v
  delete env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"]
  Object.assign(env, extra)
  return new Promise((resolve) =>
    execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, env, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
  )
}

describe.skipIf(process.env["S3_ENDPOINT"] === undefined)("the AWS SDK's Node-version warning", () => {
  it("is not printed by the library, unless the user asked for it", async () => {
    const [quiet, asked] = await Promise.all([
      // an endpoint only the SDK's rules resolve (AWS_ENDPOINT_URL_S3) makes the library load the
      // SDK; with plain env keys and S3_ENDPOINT it no longer loads it at all (8321fb1)
      connectWith({ AWS_ENDPOINT_URL_S3: process.env["S3_ENDPOINT"] ?? "" }),
      connectWith({ AWS_ENDPOINT_URL_S3: process.env["S3_ENDPOINT"] ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "false" })
    ])
    expect(quiet.code, quiet.stderr).toBe(0)
    expect(quiet.stdout).toContain("connected")
    expect(quiet.stderr).not.toMatch(/NodeVersionSupportWarning/)
    expect(asked.code, asked.stderr).toBe(0)
    // the SDK warns only below its minimum Node version; the user's own setting is left alone
    if (Number(process.versions.node.split(".")[0]) < 22) expect(asked.stderr).toMatch(/NodeVersionSupportWarning/)
  }, 150_000)
})
