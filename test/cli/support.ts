/**
 * Spawns the real `buquet` executable (bin/buquet.js) with a clean environment: no S3 settings
 * unless given, and HOME / XDG_CONFIG_HOME in a throw-away directory so no user config leaks in.
 */
import { execFile, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { encodeSegment } from "../../src/layers/FileStorage.js"
import { track } from "../support/processes.js"

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
export const bin = join(root, "bin", "buquet.js")

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** A fresh empty directory. */
export const tempDir = (name = "buquet-cli-"): string => mkdtempSync(join(tmpdir(), name))

/** Runs `buquet ...args` in `cwd` with only `env` (plus PATH and a private HOME). */
export const runCli = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: Record<string, string>; readonly timeoutMs?: number } = {}
): Promise<CliResult> => {
  const home = tempDir("buquet-home-")
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        cwd: options.cwd ?? tempDir(),
        env: {
          PATH: process.env["PATH"] ?? "/usr/bin:/bin",
          HOME: home,
          XDG_CONFIG_HOME: join(home, ".config"),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          ...options.env
        },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resolvePromise({ code, stdout, stderr })
      }
    )
  })
}

/** A spawned, still running `buquet` process (a worker): its output so far, and how it ended. */
export interface RunningCli {
  /** The child's process id (to read its /proc entries, e.g. its RSS). */
  readonly pid: number
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  readonly signal: (signal: NodeJS.Signals) => void
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/**
 * Starts `buquet ...args` in `cwd` with the same clean environment as {@link runCli}. With
 * `asExecutable`, bin/buquet.js runs as a user's shell runs it, through its shebang (with the Node
 * flags there, which bound the heap of a long-running process), rather than as `node bin/buquet.js`.
 */
export const spawnCli = (
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: Record<string, string>; readonly asExecutable?: boolean }
): RunningCli => {
  const home = tempDir("buquet-home-")
  const [command, argv] = options.asExecutable === true ? [bin, args] : [process.execPath, [bin, ...args]]
  const child = spawn(command, argv, {
    cwd: options.cwd,
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...options.env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  // stopped after the test (SIGTERM, then SIGKILL) if it is still running then: test/support/setup.ts
  track(child)
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.on("exit", (code, signal) => resolveExit({ code, signal }))
  )
  return { pid: child.pid ?? -1, output: () => ({ stdout, stderr }), signal: (s) => void child.kill(s), exited }
}

/** Polls `check` until it returns a value (not undefined), or fails after `attempts` tries. */
export const eventually = async <A>(
  check: () => Promise<A | undefined>,
  what: string | (() => string),
  attempts = 60,
  pauseMs = 500
): Promise<A> => {
  for (let i = 0; i < attempts; i++) {
    const value = await check()
    if (value !== undefined) return value
    await new Promise((r) => setTimeout(r, pauseMs))
  }
  throw new Error(`gave up waiting for ${typeof what === "string" ? what : what()}`)
}

/**
 * Writes one object into the embedded file store under `cwd` (its `BQ1` header line, then the
 * body), each key segment encoded as the store encodes it.
 */
export const putObject = (cwd: string, key: string, value: unknown): void => {
  const segments = key.split("/").map(encodeSegment)
  const dir = join(cwd, ".buquet", ...segments.slice(0, -1))
  mkdirSync(dir, { recursive: true })
  const body = Buffer.from(JSON.stringify(value))
  const etag = `"${createHash("md5").update(body).digest("hex")}"`
  const header = `BQ1 ${JSON.stringify({ etag, size: body.byteLength, lastModified: Date.now() })}\n`
  writeFileSync(join(dir, `${segments.at(-1)!}.obj`), Buffer.concat([Buffer.from(header), body]))
}

/** A scheduler leader lease held by someone else for the next hour (for `control/leader/scheduler.json`). */
export const heldSchedulerLease = () => {
  const now = new Date()
  return {
    name: "scheduler",
    holder: "elsewhere-1",
    lease_id: "l-1",
    acquired_at: now.toISOString(),
    renewed_at: now.toISOString(),
    expires_at: new Date(now.getTime() + 3_600_000).toISOString()
  }
}

/** A schedule record firing `@daily`, active since 2020 (so its next run is long overdue without a scheduler). */
export const dailySchedule = (id: string) => ({
  id,
  task_type: "report",
  input: {},
  cron: "@daily",
  enabled: true,
  created_at: "2020-01-01T00:00:00.000Z",
  updated_at: "2020-01-01T00:00:00.000Z",
  active_since: "2020-01-01T00:00:00.000Z"
})
