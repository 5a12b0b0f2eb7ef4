/**
 * Every setting that is parsed is applied (design.md §7; the reference parsed `[worker.polling]`,
 * `[worker.shard_leasing]`, `max_objects_per_sweep` and `sweep_mode` and never used them): a config
 * file with every key of `[worker]`, `[worker.polling]`, `[worker.shard_leasing]`, `[monitor]` and
 * `[dashboard]` set to a
 * non-default value is resolved, and the options handed to the Worker, the Monitor and the
 * Dashboard carry each value. A guard test fails when a setting is added to the model without
 * being checked here.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { ConfigProvider, Duration, Effect, Either } from "effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { settings } from "../../src/domain/ConfigModel.js"
import { resolve_ } from "../../src/layers/Config.js"
import { dashboardOptions, monitorOptions, workerOptions } from "../../src/cli/options.js"
import * as Buquet from "../../src/Buquet.js"
import { Queue } from "../../src/services/Queue.js"

const everyKey = `
[queue]
shard_prefix_len = 2
type_check = "strict"

[worker]
id = "w-config"
shards = ["0a", "ff"]
concurrency = 7
ready_page_size = 100
shutdown_grace_secs = 12
heartbeat_busy_secs = 4
heartbeat_idle_secs = 40
monitor = false
scheduler = true

[worker.shard_leasing]
enabled = true
shards_per_worker = 5
lease_ttl_secs = 45
renewal_interval_secs = 15

[worker.polling]
strategy = "adaptive"
min_interval_ms = 250
max_interval_ms = 9000
backoff_multiplier = 1.5
interval_ms = 777

[monitor]
check_interval_secs = 7
sweep_interval_secs = 0
max_tasks_per_scan = 50
max_objects_per_sweep = 200
worker_health_threshold_secs = 90
sweep_mode = "on_demand"
quiet_check_interval_secs = 900
retention_days = 14
retention_action = "delete"

[dashboard]
host = "0.0.0.0"
port = 8123
token = "0123456789abcdef-secret"
refresh_secs = 9
max_streams = 42
`

/** The keys this file sets (guard: every non-connection setting of the model is among them). */
const tested = new Set([
  "queue.shard_prefix_len",
  ...[...everyKey.matchAll(/^\[(.+)\]$|^(\w+) =/gm)].reduce<{ section: string; keys: Array<string> }>((acc, m) => {
    if (m[1] !== undefined) return { section: m[1], keys: acc.keys }
    return { section: acc.section, keys: [...acc.keys, `${acc.section}.${m[2]}`] }
  }, { section: "", keys: [] }).keys
])

const resolveText = (text: string, env: Record<string, string> = {}, flags: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), "buquet-applied-"))
  mkdirSync(join(dir, "xdg"))
  writeFileSync(join(dir, ".buquet.toml"), text)
  return resolve_({ cwd: dir, flags: new Map(Object.entries(flags)) }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["XDG_CONFIG_HOME", join(dir, "xdg")], ...Object.entries(env)]))),
    Effect.provide(NodeFileSystem.layer),
    Effect.map((config) => ({ dir, config }))
  )
}

const millis = (d: Duration.DurationInput | undefined) => (d === undefined ? undefined : Duration.toMillis(Duration.decode(d)))

describe("every parsed setting reaches its component", () => {
  it("every section setting of the model is set by this test's file", () => {
    const sectionSettings = settings.filter((s) => !s.inProfile).map((s) => s.path)
    expect(sectionSettings.filter((p) => !tested.has(p))).toEqual([])
  })

  it.effect("[worker] and [worker.polling] → the Worker's options", () =>
    Effect.gen(function*() {
      const { config } = yield* resolveText(everyKey)
      const w = workerOptions(config.worker, config.shardPrefixLen, "fallback", config.monitor)
      expect(w.id).toBe("w-config")
      expect(w.shards).toEqual(["0a", "ff"])
      expect(w.shardPrefixLen).toBe(2)
      expect(w.concurrency).toBe(7)
      expect(w.pageSize).toBe(100)
      expect(millis(w.shutdownGracePeriod)).toBe(12_000)
      expect(millis(w.heartbeat?.busy)).toBe(4_000)
      expect(millis(w.heartbeat?.idle)).toBe(40_000)
      expect(w.polling?._tag).toBe("Adaptive")
      if (w.polling?._tag === "Adaptive") {
        expect(millis(w.polling.min)).toBe(250)
        expect(millis(w.polling.max)).toBe(9_000)
        expect(w.polling.factor).toBe(1.5)
      }
      expect(w.monitor).toBe(false)
      expect(w.scheduler).toBe(true)
      const leasing = w.shardLeasing
      expect(typeof leasing === "object" ? [leasing.shardsPerWorker, millis(leasing.leaseTtl), millis(leasing.renewInterval)] : leasing)
        .toEqual([5, 45_000, 15_000])
    }))

  it.effect("fixed polling uses interval_ms; an unset id falls back", () =>
    Effect.gen(function*() {
      const { config } = yield* resolveText("[worker.polling]\nstrategy = \"fixed\"\ninterval_ms = 777\n")
      const w = workerOptions(config.worker, config.shardPrefixLen, "fallback", config.monitor)
      expect(w.polling).toEqual({ _tag: "Fixed", interval: Duration.millis(777) })
      expect(w.id).toBe("fallback")
      expect(w.shards).toBeUndefined()
      expect(w.scheduler).toBe(false)
      expect(w.shardLeasing).toBe(false)
      // the embedded monitor is on by default and gets the [monitor] settings
      expect(typeof w.monitor === "object" ? millis(w.monitor.checkInterval) : w.monitor).toBe(30_000)
    }))

  it.effect("[queue] type_check → the Queue of the stack built from the configuration", () =>
    Effect.gen(function*() {
      const { config, dir } = yield* resolveText(everyKey)
      expect(config.typeCheck).toBe("strict")
      const queue = yield* Effect.provide(Queue, Buquet.layerFromConfig({ cwd: dir, flags: new Map([["storage", "memory"]]) }))
      expect(queue.config.typeCheck).toBe("strict")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("[monitor] → the Monitor's options (retention included)", () =>
    Effect.gen(function*() {
      const { config } = yield* resolveText(everyKey)
      const m = monitorOptions(config.monitor, "w-config")
      expect(millis(m.checkInterval)).toBe(7_000)
      expect(millis(m.sweepInterval)).toBe(0)
      expect(m.maxTasksPerScan).toBe(50)
      expect(m.maxObjectsPerSweep).toBe(200)
      expect(millis(m.workers?.staleAfter)).toBe(90_000)
      expect(m.sweepMode).toBe("on_demand")
      expect(m.quiet === false ? 0 : millis(m.quiet?.checkInterval)).toBe(900_000)
      expect(millis(m.retention?.olderThan)).toBe(14 * 86_400_000)
      expect(m.retention?.action).toBe("delete")
      expect(m.leader?.holderId).toBe("w-config")
    }))

  it.effect("[dashboard] → the Dashboard's options; the token is redacted in config show", () =>
    Effect.gen(function*() {
      const { config } = yield* resolveText(everyKey)
      const d = dashboardOptions(config.dashboard)
      expect(d).toMatchObject({ host: "0.0.0.0", port: 8123, token: "0123456789abcdef-secret", maxEventStreams: 42 })
      expect(millis(d.refreshInterval)).toBe(9_000)
      expect(String(config.dashboard.token)).not.toContain("secret")
    }))

  it.effect("BUQUET_DASHBOARD_TOKEN and worker flags take part in the precedence", () =>
    Effect.gen(function*() {
      const { config } = yield* resolveText(everyKey, { BUQUET_DASHBOARD_TOKEN: "from-the-environment-123" }, {
        "worker.concurrency": "3",
        "worker.monitor": "true"
      })
      expect(dashboardOptions(config.dashboard).token).toBe("from-the-environment-123")
      expect(config.worker.concurrency).toBe(3)
      expect(config.worker.monitor).toBe(true)
    }))
})

const failure = (text: string, env: Record<string, string> = {}) =>
  resolveText(text, env).pipe(
    Effect.either,
    Effect.map((e) => (Either.isLeft(e) ? e.left.message : "resolved"))
  )

describe("bad worker, monitor and dashboard settings name the file, the key and the allowed values", () => {
  it.effect("an unknown polling strategy", () =>
    Effect.gen(function*() {
      const message = yield* failure("[worker.polling]\nstrategy = \"eager\"\n")
      expect(message).toMatch(/\.buquet\.toml: \[worker\.polling\] strategy: "eager" is not allowed: use one of "adaptive", "fixed"/)
    }))

  it.effect("a multiplier of 1", () =>
    Effect.gen(function*() {
      expect(yield* failure("[worker.polling]\nbackoff_multiplier = 1\n")).toMatch(/backoff_multiplier: 1 is not allowed: use a number greater than 1/)
    }))

  it.effect("an unknown key of [monitor] lists the allowed ones", () =>
    Effect.gen(function*() {
      const message = yield* failure("[monitor]\nsweep_page_size = 10\n")
      expect(message).toContain("[monitor] sweep_page_size is not a known key; allowed keys: check_interval_secs")
      expect(message).toContain("sweep_mode")
    }))

  it.effect("a bad sweep mode from the environment names the variable", () =>
    Effect.gen(function*() {
      expect(yield* failure("", { BUQUET_MONITOR_SWEEP_MODE: "sometimes" })).toMatch(
        /BUQUET_MONITOR_SWEEP_MODE: "sometimes" is not allowed: use one of "continuous", "on_demand"/
      )
    }))

  it.effect("shards that do not fit the prefix length", () =>
    Effect.gen(function*() {
      expect(yield* failure("[worker]\nshards = [\"0a\"]\n")).toMatch(/shard "0a" does not fit the shard prefix length 1/)
    }))

  it.effect("min above max", () =>
    Effect.gen(function*() {
      expect(yield* failure("[worker.polling]\nmin_interval_ms = 6000\n")).toMatch(/min_interval_ms \(6000\) is above max_interval_ms \(5000\)/)
    }))

  it.effect("a shard-lease renewal not below the lease TTL", () =>
    Effect.gen(function*() {
      const message = yield* failure("[worker.shard_leasing]\nlease_ttl_secs = 10\nrenewal_interval_secs = 10\n")
      expect(message).toContain("renewal_interval_secs (10) must be below lease_ttl_secs (10)")
    }))

  it.effect("a bad dashboard port", () =>
    Effect.gen(function*() {
      expect(yield* failure("[dashboard]\nport = 70000\n")).toMatch(/\[dashboard\] port: 70000 is not allowed: use an integer from 0 to 65535/)
    }))
})
