/**
 * Issue 16 item 13, secrets outside the process, through the spawned CLI:
 * - `config show` (table and `--json`) and `doctor` mask a password inside the endpoint URL and
 *   never print the AWS secret key;
 * - `dashboard --help` points to BUQUET_DASHBOARD_TOKEN instead of `--token` (visible in `ps`);
 * - the embedded file store creates its folders 0700 and its files 0600 under umask 022.
 */
import { execFile } from "node:child_process"
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { bin, runCli, tempDir } from "./support.js"

const password = "hunter2pass"
const awsSecret = "wJalrXUtnFEMI-never-printed"
// port 9 (discard) on loopback: nothing listens, so doctor fails fast without reaching anything
const endpoint = `http://user:${password}@127.0.0.1:9`
const masked = "http://user:***@127.0.0.1:9"
const s3Env = { S3_ENDPOINT: endpoint, S3_BUCKET: "secrets-test", AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: awsSecret }

describe("secrets stay out of the CLI's output", () => {
  it("config show masks the endpoint's password, in the table and in JSON, from the environment and from a flag", async () => {
    const [table, json, flag] = await Promise.all([
      runCli(["config", "show"], { env: s3Env }),
      runCli(["config", "show", "--json"], { env: s3Env }),
      runCli(["config", "show", "--bucket", "flag-bucket", "--endpoint", `https://ops:${password}@s3.example:7480/`])
    ])
    for (const r of [table, json, flag]) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout + r.stderr).not.toContain(password)
      expect(r.stdout + r.stderr).not.toContain(awsSecret)
    }
    expect(table.stdout).toContain(masked)
    const shown = JSON.parse(json.stdout) as { storage: { endpoint: string }; settings: Array<{ key: string; value: string | null }> }
    expect(shown.storage.endpoint).toBe(masked)
    expect(shown.settings.find((s) => s.key === "endpoint")?.value).toBe(masked)
    expect(flag.stdout).toContain("https://ops:***@s3.example:7480/")
  }, 120_000)

  it("a refused secret or endpoint is not echoed back in the error", async () => {
    const [token, url] = await Promise.all([
      runCli(["config", "validate"], { env: { BUQUET_DASHBOARD_TOKEN: "tiny-secret" } }),
      runCli(["config", "validate", "--endpoint", `ftp://user:${password}@s3.example`])
    ])
    expect(token.code, token.stderr).toBe(2)
    expect(token.stderr).toMatch(/BUQUET_DASHBOARD_TOKEN/)
    expect(token.stderr).not.toContain("tiny-secret")
    expect(url.code, url.stderr).toBe(2)
    expect(url.stderr).toContain("ftp://user:***@s3.example")
    expect(url.stderr).not.toContain(password)
  }, 120_000)

  it("an endpoint URL in the wrong place is not echoed back by the usage errors", async () => {
    const url = `https://AKIDEXAMPLE:${password}@s3.example:7480`
    // a URL where a command is expected, where a shard is expected, and as a stray option value
    const runs = await Promise.all([
      runCli([url, "list"]),
      runCli(["list", url]),
      runCli(["list", "--status", url]),
      runCli(["submit", "t", "--input", "{}", "--delay", url])
    ])
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout + r.stderr).not.toContain(password)
    }
    expect(runs[0]!.stderr).toContain("https://AKIDEXAMPLE:***@s3.example:7480")
  }, 120_000)

  it("doctor masks it too", async () => {
    const doctor = await runCli(["doctor"], { env: s3Env })
    expect(doctor.stdout + doctor.stderr).toContain(masked)
    expect(doctor.stdout + doctor.stderr).not.toContain(password)
    expect(doctor.stdout + doctor.stderr).not.toContain(awsSecret)
  }, 120_000)

  it("dashboard --help recommends BUQUET_DASHBOARD_TOKEN over --token", async () => {
    const help = await runCli(["dashboard", "--help"], { env: { COLUMNS: "200" } })
    expect(help.code, help.stderr).toBe(0)
    const text = help.stdout.replace(/\s+/g, " ")
    expect(text).toMatch(/--token.*BUQUET_DASHBOARD_TOKEN/)
    expect(text).toMatch(/visible in ps/i)
  }, 120_000)

  it("the embedded store creates its folders 0700 and its files 0600, whatever the umask", async () => {
    const cwd = tempDir("buquet-modes-")
    const result = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        "/bin/sh",
        ["-c", `umask 022 && exec "${process.execPath}" "${bin}" submit -t report -i '{"to":"a@example.com"}'`],
        { cwd, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: cwd, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : 1, stderr })
      )
    )
    expect(result.code, result.stderr).toBe(0)
    const modes: Array<string> = []
    const walk = (dir: string): void => {
      modes.push(`${(statSync(dir).mode & 0o777).toString(8)} ${dir}/`)
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name)
        if (entry.isDirectory()) walk(path)
        else modes.push(`${(statSync(path).mode & 0o777).toString(8)} ${path}`)
      }
    }
    walk(join(cwd, ".buquet"))
    expect(modes.filter((m) => m.endsWith(".obj")).length, modes.join("\n")).toBeGreaterThanOrEqual(2)
    for (const m of modes) expect(m, m).toMatch(m.endsWith("/") ? /^700 / : /^600 /)
  }, 120_000)
})
