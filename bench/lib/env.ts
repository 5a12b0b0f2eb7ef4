/**
 * Where the benchmarks run: the real S3 server (started with the project's script when
 * `S3_ENDPOINT` is unset), the machine, and the versions of what is measured.
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import os from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

/** How a process reaches the real server (also handed to child processes). */
export interface S3Target {
  readonly endpoint: string
  readonly region: string
  readonly bucket: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

const parseExports = (text: string): Record<string, string> =>
  Object.fromEntries(
    text.split("\n").flatMap((line) => {
      const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim())
      return m === null ? [] : [[m[1]!, m[2]!.replace(/^'(.*)'$/, "$1")]]
    })
  )

/** The server from the environment, or the project's RGW started (or reused) by scripts/s3-start.sh. */
export const ensureS3 = (): S3Target => {
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] = "true"
  if (process.env["S3_ENDPOINT"] === undefined || process.env["S3_ENDPOINT"] === "") {
    console.error("[bench] S3_ENDPOINT is unset: starting the project's RGW (scripts/s3-start.sh)")
    const run = spawnSync("bash", [join(root, "scripts/s3-start.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 900_000 })
    if (run.status !== 0) throw new Error(`scripts/s3-start.sh failed (exit ${run.status})`)
    Object.assign(process.env, parseExports(run.stdout))
  }
  const env = process.env
  const endpoint = env["S3_ENDPOINT"]
  const accessKeyId = env["AWS_ACCESS_KEY_ID"]
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"]
  if (endpoint === undefined || accessKeyId === undefined || secretAccessKey === undefined) {
    throw new Error("S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must all be set (or unset S3_ENDPOINT to start RGW)")
  }
  const host = new URL(endpoint).hostname
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "::1") {
    throw new Error(`the benchmarks only talk to a loopback server; S3_ENDPOINT is ${endpoint}`)
  }
  return {
    endpoint,
    region: env["S3_REGION"] ?? env["AWS_REGION"] ?? "us-east-1",
    bucket: env["S3_BUCKET"] ?? "buquet-test",
    accessKeyId,
    secretAccessKey
  }
}

const tryRun = (cmd: string, args: ReadonlyArray<string>): string => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()
  } catch {
    return "unknown"
  }
}

const packageVersion = (name: string): string => {
  try {
    const pkg = JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version?: string }
    return pkg.version ?? "unknown"
  } catch {
    return "unknown"
  }
}

export interface MachineInfo {
  readonly nproc: number
  readonly memoryGiB: number
  readonly cpuModel: string
  readonly kernel: string
  readonly loadAverage: ReadonlyArray<number>
}

export const machineInfo = (): MachineInfo => ({
  nproc: os.cpus().length,
  memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  cpuModel: os.cpus()[0]?.model ?? "unknown",
  kernel: `${os.type()} ${os.release()}`,
  loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100)
})

export interface Versions {
  readonly node: string
  readonly radosgw: string
  readonly effect: string
  readonly awsSdk: string
  readonly bullmq: string
  readonly redis: string
  readonly buquet: string
  readonly gitCommit: string
}

export const versions = (): Versions => ({
  node: process.version,
  radosgw: tryRun("radosgw", ["--version"]).replace(/^ceph version /, "").split(" (")[0] ?? "unknown",
  effect: packageVersion("effect"),
  awsSdk: packageVersion("@aws-sdk/client-s3"),
  bullmq: packageVersion("bullmq"),
  redis: (/v=([\d.]+)/.exec(tryRun("redis-server", ["--version"]))?.[1]) ?? "not installed",
  buquet: JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string,
  gitCommit: tryRun("git", ["-C", root, "rev-parse", "--short", "HEAD"])
})

/** Percentile (nearest rank) of a sample; NaN for an empty one. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export const round = (x: number, digits = 1): number => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export const log = (message: string): void => {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)
}
