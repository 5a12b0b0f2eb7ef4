/**
 * Configuration precedence (issue 7, acceptance 5): flag > environment > selected profile >
 * project file > user file > default, for bucket, endpoint, region, shard prefix length and
 * polling; and bad keys or values name the file, the key and the allowed values.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { resolve_ } from "../../src/layers/Config.js"
import type { ResolvedConfig } from "../../src/services/BuquetConfig.js"

type Level = "flag" | "env" | "profile" | "project" | "user" | "default"
const levels: ReadonlyArray<Level> = ["flag", "env", "profile", "project", "user", "default"]

/** One setting under test: how each level sets it, and how to read it back. */
interface Case {
  readonly name: string
  readonly flag: readonly [path: string, value: string]
  readonly env: readonly [name: string, value: string]
  /** TOML for the profile / a file: [section, key, value-literal]; "default" = the [default] section. */
  readonly toml: (level: "profile" | "project" | "user") => readonly [section: string, key: string, value: string]
  readonly read: (c: ResolvedConfig) => unknown
  /** The expected value at each level. */
  readonly expected: Record<Level, unknown>
}

const s3 = (c: ResolvedConfig) => (c.storage._tag === "S3" ? c.storage : undefined)

const cases: ReadonlyArray<Case> = [
  {
    name: "bucket",
    flag: ["bucket", "from-flag"],
    env: ["S3_BUCKET", "from-env"],
    toml: (l) => ["default", "bucket", `"from-${l}"`],
    read: (c) => s3(c)?.bucket ?? `file:${c.storage._tag === "File" && c.storage.implicit}`,
    expected: { flag: "from-flag", env: "from-env", profile: "from-profile", project: "from-project", user: "from-user", default: "file:true" }
  },
  {
    name: "endpoint",
    flag: ["endpoint", "http://flag:1"],
    env: ["S3_ENDPOINT", "http://env:1"],
    toml: (l) => ["default", "endpoint", `"http://${l}:1"`],
    read: (c) => s3(c)?.endpoint,
    expected: { flag: "http://flag:1", env: "http://env:1", profile: "http://profile:1", project: "http://project:1", user: "http://user:1", default: undefined }
  },
  {
    name: "region",
    flag: ["region", "flag-1"],
    env: ["AWS_REGION", "env-1"],
    toml: (l) => ["default", "region", `"${l}-1"`],
    read: (c) => s3(c)?.region,
    expected: { flag: "flag-1", env: "env-1", profile: "profile-1", project: "project-1", user: "user-1", default: "us-east-1" }
  },
  {
    name: "shard prefix length",
    flag: ["queue.shard_prefix_len", "4"],
    env: ["BUQUET_SHARD_PREFIX_LEN", "3"],
    toml: (l) => ["queue", "shard_prefix_len", l === "profile" ? "2" : l === "project" ? "4" : "3"],
    read: (c) => c.shardPrefixLen,
    expected: { flag: 4, env: 3, profile: 2, project: 4, user: 3, default: 1 }
  },
  {
    name: "polling min interval",
    flag: ["worker.polling.min_interval_ms", "11"],
    env: ["BUQUET_POLLING_MIN_INTERVAL_MS", "22"],
    toml: (l) => ["worker.polling", "min_interval_ms", l === "profile" ? "33" : l === "project" ? "44" : "55"],
    read: (c) => c.worker.polling.minIntervalMs,
    expected: { flag: 11, env: 22, profile: 33, project: 44, user: 55, default: 100 }
  },
  {
    name: "polling strategy",
    flag: ["worker.polling.strategy", "fixed"],
    env: ["BUQUET_POLLING_STRATEGY", "adaptive"],
    toml: (l) => ["worker.polling", "strategy", l === "project" ? "\"adaptive\"" : "\"fixed\""],
    read: (c) => c.worker.polling.strategy,
    expected: { flag: "fixed", env: "adaptive", profile: "fixed", project: "adaptive", user: "fixed", default: "adaptive" }
  }
]

const tomlFor = (entries: ReadonlyArray<readonly [string, string, string]>, profile?: boolean): string => {
  const bySection = new Map<string, Array<string>>()
  for (const [section, key, value] of entries) {
    const name = profile === true ? (section === "default" ? "profiles.p" : `profiles.p.${section}`) : section
    bySection.set(name, [...(bySection.get(name) ?? []), `${key} = ${value}`])
  }
  return [...bySection].map(([s, lines]) => `[${s}]\n${lines.join("\n")}\n`).join("\n")
}

/** Resolves with the levels from `top` down set (so `top` must win), in a fresh directory. */
const resolveWith = (c: Case, top: Level, withBucket: boolean) => {
  const dir = mkdtempSync(join(tmpdir(), "buquet-config-"))
  const project = join(dir, "project")
  const xdg = join(dir, "xdg")
  mkdirSync(project)
  mkdirSync(join(xdg, "buquet"), { recursive: true })
  const active = levels.slice(levels.indexOf(top))
  // a bucket in the user file keeps S3 settings observable for endpoint/region
  const extra: Array<readonly [string, string, string]> = withBucket ? [["default", "bucket", "\"base\""]] : []
  const user = [...(active.includes("user") ? [c.toml("user")] : []), ...extra]
  writeFileSync(join(xdg, "buquet", "config.toml"), tomlFor(user))
  const profileEntries = active.includes("profile") ? [c.toml("profile")] : []
  const projectEntries = active.includes("project") ? [c.toml("project")] : []
  writeFileSync(join(project, ".buquet.toml"), tomlFor(projectEntries) + "\n" + tomlFor(profileEntries, true))
  const env = new Map<string, string>([["XDG_CONFIG_HOME", xdg]])
  if (active.includes("env")) env.set(c.env[0], c.env[1])
  const flags = new Map<string, string>(active.includes("flag") ? [c.flag] : [])
  return resolve_({ cwd: project, flags, profile: active.includes("profile") ? "p" : undefined }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(env)),
    Effect.provide(NodeFileSystem.layer)
  )
}

describe("config precedence: flag > env > profile > project file > user file > default", () => {
  for (const c of cases) {
    for (const top of levels) {
      it.effect(`${c.name}: ${top} wins over every level below it`, () =>
        Effect.gen(function*() {
          const config = yield* resolveWith(c, top, c.name !== "bucket")
          expect(c.read(config)).toEqual(c.expected[top])
          const setting = config.settings.find((s) => s.path === (c.flag[0]))
          const source = { flag: "flag", env: "environment", profile: "profile", project: "file", user: "file", default: "default" }[top]
          expect(setting?.source).toBe(source)
        }))
    }
  }

  it.effect("a flag equal to the default still wins over a file (the reference let the file win)", () =>
    Effect.gen(function*() {
      const c = cases.find((x) => x.name === "shard prefix length")!
      const config = yield* resolveWith({ ...c, flag: ["queue.shard_prefix_len", "1"] }, "flag", false)
      expect(config.shardPrefixLen).toBe(1)
    }))

  it.effect("--storage wins over a bucket, and names file and memory stores", () =>
    Effect.gen(function*() {
      const c = cases[0]!
      const withStorage = (storage: string) =>
        resolve_({ cwd: tmpdir(), flags: new Map([["bucket", "bkt"], ["storage", storage]]) }).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
          Effect.provide(NodeFileSystem.layer)
        )
      expect((yield* withStorage("memory")).storage._tag).toBe("Memory")
      const file = (yield* withStorage("file:///tmp/q")).storage
      expect(file).toEqual({ _tag: "File", directory: "/tmp/q", implicit: false })
      expect(s3(yield* withStorage("s3://other-bucket"))?.bucket).toBe("other-bucket")
      void c
    }))
})

const failing = (files: { project?: string; user?: string }, env: Record<string, string> = {}, flags: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), "buquet-config-bad-"))
  mkdirSync(join(dir, "xdg", "buquet"), { recursive: true })
  if (files.project !== undefined) writeFileSync(join(dir, ".buquet.toml"), files.project)
  if (files.user !== undefined) writeFileSync(join(dir, "xdg", "buquet", "config.toml"), files.user)
  return resolve_({ cwd: dir, flags: new Map(Object.entries(flags)) }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["XDG_CONFIG_HOME", join(dir, "xdg")], ...Object.entries(env)]))),
    Effect.provide(NodeFileSystem.layer),
    Effect.either,
    Effect.map((e) => ({ dir, error: Either.isLeft(e) ? e.left : undefined }))
  )
}

describe("bad configuration names the file, the key and the allowed values", () => {
  it.effect("an unknown key in a section", () =>
    Effect.gen(function*() {
      const { dir, error } = yield* failing({ project: "[queue]\nshard_prefix = 2\n" })
      expect(error?.message).toContain(join(dir, ".buquet.toml"))
      expect(error?.message).toContain("[queue] shard_prefix")
      expect(error?.message).toContain("allowed keys: shard_prefix_len")
    }))

  it.effect("a value out of range", () =>
    Effect.gen(function*() {
      const { dir, error } = yield* failing({ user: "[queue]\nshard_prefix_len = 7\n" })
      expect(error?.message).toContain(join(dir, "xdg", "buquet", "config.toml"))
      expect(error?.message).toContain("[queue] shard_prefix_len")
      expect(error?.message).toContain("an integer from 1 to 4")
    }))

  it.effect("a value of the wrong type", () =>
    Effect.gen(function*() {
      const { error } = yield* failing({ project: "[default]\nbucket = 3\n" })
      expect(error?.message).toMatch(/\[default\] bucket: 3 is not allowed: use an S3 bucket name/)
    }))

  it.effect("an unknown section", () =>
    Effect.gen(function*() {
      const { error } = yield* failing({ project: "[qeue]\nshard_prefix_len = 2\n" })
      expect(error?.message).toContain("[qeue] is not a known section; allowed sections:")
      expect(error?.message).toContain("[queue]")
    }))

  it.effect("broken TOML", () =>
    Effect.gen(function*() {
      const { dir, error } = yield* failing({ project: "[queue\n" })
      expect(error?.message).toContain(join(dir, ".buquet.toml"))
      expect(error?.message).toContain("not valid TOML")
    }))

  it.effect("a bad environment variable names the variable", () =>
    Effect.gen(function*() {
      const { error } = yield* failing({}, { BUQUET_SHARD_PREFIX_LEN: "zero" })
      expect(error?.message).toContain("BUQUET_SHARD_PREFIX_LEN")
      expect(error?.message).toContain("an integer from 1 to 4")
    }))

  it.effect("a bad flag names the flag", () =>
    Effect.gen(function*() {
      const { error } = yield* failing({}, {}, { storage: "ftp://x" })
      expect(error?.message).toContain("--storage")
      expect(error?.message).toContain("\"s3://BUCKET\", \"file://DIR\" or \"memory\"")
    }))

  it.effect("an undefined profile", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "buquet-config-profile-"))
      const result = yield* resolve_({ cwd: dir, profile: "nope" }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["XDG_CONFIG_HOME", dir]]))),
        Effect.provide(NodeFileSystem.layer),
        Effect.either
      )
      expect(Either.isLeft(result) && result.left.message).toContain("[profiles.nope]")
    }))
})
