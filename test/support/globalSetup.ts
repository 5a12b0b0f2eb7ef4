/**
 * Vitest global set-up: makes a real S3 server (Ceph RGW, scripts/s3-start.sh) available to the
 * real-S3 suites, and hands its settings to the test workers (`inject("s3")` and the env).
 *
 * - `S3_ENDPOINT` set: that server is used as it is (nothing is started or stopped).
 * - Otherwise, when this machine can run RGW (radosgw installed, or root with apt-get), the
 *   project's cluster is started (or reused when already running).
 * - Teardown stops the cluster only when a test run started it, and only once no other test run
 *   (several engineers share one machine) still uses it.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { TestProject } from "vitest/node"
import { type S3Availability, settingsFromEnv } from "./s3env.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** The real S3 server for the real-S3 suites, or why there is none. */
    s3: S3Availability
  }
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const uid = process.getuid?.() ?? 0
const stateDir = process.env["S3_STATE_DIR"] ?? `/tmp/buquet-rgw-${uid}`
// one file per test run using a harness-started cluster; lives beside the state dir, which stop wipes
const usersDir = `${stateDir}.users`
const startedMarker = join(stateDir, "started-by-vitest")

const onPath = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0

const canStart = (): string | undefined => {
  if (process.platform !== "linux") return "RGW needs Linux"
  if (onPath("radosgw") && onPath("ceph-mon")) return undefined
  if (uid === 0 && onPath("apt-get")) return undefined
  return "radosgw is not installed and this user cannot install it (needs root and apt-get)"
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: alive, but someone else's
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const parseExports = (text: string): Record<string, string> =>
  Object.fromEntries(
    text.split("\n").flatMap((line) => {
      const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim())
      return m === null ? [] : [[m[1]!, m[2]!.replace(/^'(.*)'$/, "$1")]]
    })
  )

/** Starts (or reuses) the project's RGW; returns its exports, or why it could not. */
const startRgw = (): { env: Record<string, string> } | { reason: string } => {
  const cannot = canStart()
  if (cannot !== undefined) return { reason: cannot }
  mkdirSync(usersDir, { recursive: true })
  writeFileSync(join(usersDir, String(process.pid)), "")
  const run = spawnSync("bash", [join(root, "scripts/s3-start.sh")], {
    encoding: "utf8",
    env: { ...process.env, S3_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 900_000
  })
  if (run.status !== 0) {
    rmSync(join(usersDir, String(process.pid)), { force: true })
    return { reason: `scripts/s3-start.sh failed (exit ${run.status}): ${(run.stderr ?? "").trim().split("\n").slice(-5).join(" | ")}` }
  }
  if (!/already running/.test(run.stderr)) writeFileSync(startedMarker, String(process.pid))
  return { env: parseExports(run.stdout) }
}

/** Stops the cluster when a test run started it and no other live test run still uses it. */
const stopRgw = (): void => {
  rmSync(join(usersDir, String(process.pid)), { force: true })
  const others = existsSync(usersDir) ? readdirSync(usersDir).filter((f) => /^\d+$/.test(f) && pidAlive(Number(f))) : []
  if (others.length > 0 || !existsSync(startedMarker)) return
  // under the start script's lock, so a run that is starting right now waits for us
  execFileSync("bash", ["-c", `exec 9>"$0.lock"; flock -w 120 9; S3_STATE_DIR="$0" bash "$1"`, stateDir, join(root, "scripts/s3-stop.sh")], {
    stdio: "inherit"
  })
  if (readdirSync(usersDir).length === 0) rmSync(usersDir, { recursive: true, force: true })
}

/** Vitest global set-up: returns the teardown. */
export default function setup(project: TestProject): () => void {
  // the SDK warns on every process that Node 20 support ends; it is noise in test output
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"
  const existing = settingsFromEnv(process.env)
  if (existing !== undefined) {
    project.provide("s3", { available: true, settings: existing })
    return () => {}
  }
  const started = startRgw()
  if ("reason" in started) {
    project.provide("s3", { available: false, reason: started.reason })
    return () => {}
  }
  // the workers are forked after this: they inherit the env as well as the provided settings
  Object.assign(process.env, started.env)
  const settings = settingsFromEnv(process.env)
  project.provide(
    "s3",
    settings === undefined ? { available: false, reason: "scripts/s3-start.sh printed no S3_ENDPOINT" } : { available: true, settings }
  )
  return stopRgw
}
