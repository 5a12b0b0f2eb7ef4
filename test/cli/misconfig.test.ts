/**
 * Misconfiguration stops loudly (issue 16 items 4 and 6), through the spawned CLI on the embedded
 * store: half an S3 configuration is an error naming what is missing (the embedded store is used
 * only when no S3 setting exists); hostile or malformed settings are refused by `config validate`
 * and every command with exit 2; a misspelled command gets a "did you mean"; the dashboard's token
 * rules exit 2; cancelling an unknown task exits 1 with a clear line.
 */
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { runCli, tempDir } from "./support.js"

const keys = { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "secret-example" }

/** The stderr lines other than the embedded-store notice. */
const errorLines = (stderr: string) => stderr.trim().split("\n").filter((l) => l !== "" && !l.startsWith("buquet: no bucket configured;"))

describe.concurrent("half an S3 configuration is an error, not the embedded store", () => {
  it("S3_ENDPOINT and AWS keys without a bucket: exit 2 naming S3_ENDPOINT and the missing bucket; nothing written locally", async () => {
    const cwd = tempDir()
    const r = await runCli(["list"], { cwd, env: { S3_ENDPOINT: "http://127.0.0.1:9", ...keys } })
    expect(r.code, r.stderr).toBe(2)
    const lines = errorLines(r.stderr)
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^buquet: .*S3_ENDPOINT.*no bucket/)
    expect(lines[0]).toMatch(/S3_BUCKET/)
    expect(r.stderr).not.toMatch(/using the embedded file store/)
    expect(existsSync(join(cwd, ".buquet"))).toBe(false)
  })

  it("an endpoint in ./.buquet.toml without a bucket: exit 2 naming the file", async () => {
    const cwd = tempDir()
    writeFileSync(join(cwd, ".buquet.toml"), "[default]\nendpoint = \"http://127.0.0.1:9\"\n")
    const r = await runCli(["submit", "-t", "x", "-i", "{}"], { cwd })
    expect(r.code, r.stderr).toBe(2)
    expect(errorLines(r.stderr)[0]).toMatch(/\.buquet\.toml.*no bucket/)
    expect(existsSync(join(cwd, ".buquet"))).toBe(false)
  })

  it("plain AWS credentials and AWS_REGION alone (ambient in AWS environments) still use the embedded store", async () => {
    const cwd = tempDir()
    const r = await runCli(["list"], { cwd, env: { ...keys, AWS_REGION: "eu-west-1" } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/using the embedded file store/)
  })
})

describe.concurrent("config validate refuses malformed and hostile settings with exit 2", () => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ["a short dashboard token", "[dashboard]\ntoken = \"short\"\n", /dashboard\.token|token/],
    ["an endpoint that is not a URL", "[default]\nbucket = \"jobs\"\nendpoint = \"not a url\"\n", /endpoint/],
    ["a javascript: endpoint", "[default]\nbucket = \"jobs\"\nendpoint = \"javascript:alert(1)\"\n", /endpoint/],
    ["a bucket with a path", "[default]\nbucket = \"../x\"\n", /bucket/],
    ["a key prefix that climbs", "[default]\nbucket = \"jobs\"\nkey_prefix = \"../\"\n", /key_prefix/],
    ["a hostile worker id", "[worker]\nid = \"../../etc/passwd\"\n", /worker\.id|id/],
    ["a region with a path", "[default]\nbucket = \"jobs\"\nregion = \"../../x\"\n", /region/]
  ]
  for (const [name, toml, key] of cases) {
    it(name, async () => {
      const cwd = tempDir()
      writeFileSync(join(cwd, ".buquet.toml"), toml)
      const r = await runCli(["config", "validate"], { cwd })
      expect(r.code, r.stdout + r.stderr).toBe(2)
      const lines = errorLines(r.stderr)
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(/^buquet: .*\.buquet\.toml/)
      expect(lines[0]).toMatch(key)
      expect(lines[0]).toMatch(/is not allowed: use /)
    })
  }

  it("`list` with endpoint = \"not a url\" is the same usage error, not a TypeError", async () => {
    const cwd = tempDir()
    writeFileSync(join(cwd, ".buquet.toml"), "[default]\nbucket = \"jobs\"\nendpoint = \"not a url\"\n")
    const r = await runCli(["list"], { cwd })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).not.toMatch(/TypeError/)
    expect(errorLines(r.stderr)[0]).toMatch(/endpoint.*is not allowed: use an http:\/\/ or https:\/\/ URL/)
  })
})

describe.concurrent("exit codes as documented", () => {
  it("a misspelled command: exit 2 with a did-you-mean", async () => {
    const r = await runCli(["lsit"])
    expect(r.code, r.stderr).toBe(2)
    const lines = errorLines(r.stderr)
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^buquet: unknown command "lsit"; did you mean "list"\?/)
    expect(lines[0]).toMatch(/`buquet --help`/)
  })

  it("a misspelled subcommand: exit 2 with a did-you-mean", async () => {
    const r = await runCli(["schedule", "craete"])
    expect(r.code, r.stderr).toBe(2)
    expect(errorLines(r.stderr)[0]).toMatch(/^buquet: unknown command "schedule craete"; did you mean "schedule create"\?/)
  })

  it("dashboard beyond loopback without a token: exit 2", async () => {
    const r = await runCli(["dashboard", "--host", "0.0.0.0", "--port", "0"])
    expect(r.code, r.stderr).toBe(2)
    expect(errorLines(r.stderr)[0]).toMatch(/token/)
  })

  it("dashboard with a short --token: exit 2", async () => {
    const r = await runCli(["dashboard", "--token", "short", "--port", "0"])
    expect(r.code, r.stderr).toBe(2)
    expect(errorLines(r.stderr)[0]).toMatch(/token.*16/)
  })

  it("cancel of an unknown task id: exit 1 with a line saying it does not exist", async () => {
    const id = "6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70"
    const r = await runCli(["cancel", id])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(errorLines(r.stderr)[0]).toMatch(new RegExp(`^buquet: task ${id} does not exist`))
  })
})
