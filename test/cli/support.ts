/**
 * Spawns the real `buquet` executable (bin/buquet.js) with a clean environment: no S3 settings
 * unless given, and HOME / XDG_CONFIG_HOME in a throw-away directory so no user config leaks in.
 */
import { execFile } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

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
