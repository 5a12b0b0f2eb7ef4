/**
 * `buquet doctor`: checks that a store can run a queue — configuration, credentials, bucket,
 * versioning, a live conditional-write self-test in a scratch prefix (a duplicate create-only
 * write must fail, a stale CAS must fail, a CAS race must have exactly one winner), the ETag form
 * `If-Match` needs, the clock offset, and what requests cost. Each check says what to do.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { Chunk, Duration, Effect, Either, Layer, Option, Stream } from "effect"
import { maskUrlCredentials } from "../domain/ConfigModel.js"
import { versionedWithoutConditionalWrites } from "../domain/StorageError.js"
import * as CountingStorage from "../layers/CountingStorage.js"
import { RequestCounter } from "../services/RequestCounter.js"
import * as ServerClockLayer from "../layers/ServerClock.js"
import type { ResolvedConfig } from "../services/BuquetConfig.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import type { StorageService } from "../services/Storage.js"

/** The outcome of one check. */
export type CheckStatus = "ok" | "warn" | "fail"

/** One line of the report: what was checked, how it went, and what to do about it. */
export interface Check {
  readonly name: string
  readonly status: CheckStatus
  readonly detail: string
}

/** The whole report; `ok` is false when any check failed. */
export interface DoctorReport {
  readonly checks: ReadonlyArray<Check>
  readonly ok: boolean
}

/** AWS S3 Standard request prices (us-east-1), USD per 1,000 requests. */
export const requestPrices = { putListPer1000: 0.005, getPer1000: 0.0004 } as const

const check = (name: string, status: CheckStatus, detail: string): Check => ({ name, status, detail })

const describe = (e: { readonly _tag: string; readonly message: string }): string => `${e._tag}: ${e.message}`

const body = (text: string) => new TextEncoder().encode(text)

/** How many writers race in the CAS self-test. */
const racers = 4

/** The live conditional-write self-test, under `control/doctor/{uuid}/`; cleans up after itself. */
const selfTest = (storage: StorageService) =>
  Effect.gen(function*() {
    const prefix = `control/doctor/${randomUUID()}/`
    const checks: Array<Check> = []
    const run = Effect.gen(function*() {
      // 1. a duplicate create-only write must fail
      const key = `${prefix}create`
      const first = yield* storage.put(key, body("1"), { ifNoneMatch: "*" })
      const dup = yield* Effect.either(storage.put(key, body("2"), { ifNoneMatch: "*" }))
      const dupRefused = Either.isLeft(dup) && dup.left._tag === "PreconditionFailed"
      checks.push(
        dupRefused
          ? check("create-only write", "ok", "a second If-None-Match: * write of the same key was refused (412)")
          : check(
            "create-only write",
            "fail",
            Either.isRight(dup)
              ? "a second If-None-Match: * write of an existing key succeeded: this store does not enforce create-only writes, so two producers or workers could overwrite each other; use a store that does (an unversioned bucket on RGW, AWS S3, MinIO)"
              : `the duplicate create-only write failed unexpectedly (${describe(dup.left)}); retry, and check the server's logs`
          )
      )
      // 2. a stale CAS must fail
      const second = yield* Effect.either(storage.put(key, body("3"), { ifMatch: first }))
      if (Either.isLeft(second)) {
        checks.push(check(
          "compare-and-swap",
          "fail",
          `a write with the current ETag in If-Match was refused (${describe(second.left)}): this store does not support If-Match on PUT; use one that does`
        ))
        return
      }
      const stale = yield* Effect.either(storage.put(key, body("4"), { ifMatch: first }))
      const staleRefused = Either.isLeft(stale) && stale.left._tag === "PreconditionFailed"
      checks.push(
        staleRefused
          ? check("compare-and-swap", "ok", "a write with a stale ETag in If-Match was refused (412)")
          : check(
            "compare-and-swap",
            "fail",
            Either.isRight(stale)
              ? "a write with a stale ETag in If-Match succeeded: this store does not enforce compare-and-swap, so two workers could claim one task; use a store that does"
              : `the stale compare-and-swap failed unexpectedly (${describe(stale.left)}); retry, and check the server's logs`
          )
      )
      if (!staleRefused) return
      // 3. a CAS race has exactly one winner (ambiguous answers are settled by re-reading)
      const results = yield* Effect.forEach(
        Array.from({ length: racers }, (_, i) => i),
        (i) => Effect.either(storage.put(key, body(`race-${i}`), { ifMatch: second.right })).pipe(Effect.map((r) => ({ i, r }))),
        { concurrency: "unbounded" }
      )
      const final = yield* storage.get(key)
      const finalText = Option.match(final, { onNone: () => "", onSome: (o) => new TextDecoder().decode(o.body) })
      const winners = results.filter(({ r }) => Either.isRight(r)).map(({ i }) => i)
      const unknown = results.filter(({ r }) => Either.isLeft(r) && r.left._tag === "OutcomeUnknown").map(({ i }) => i)
      const others = results.filter(({ r }) => Either.isLeft(r) && r.left._tag !== "OutcomeUnknown" && r.left._tag !== "PreconditionFailed")
      // an ambiguous writer won if its body is the one stored
      const ambiguousWinners = unknown.filter((i) => finalText === `race-${i}`)
      const total = winners.length + ambiguousWinners.length
      checks.push(
        total === 1 && others.length === 0 && (winners.length === 0 || finalText === `race-${winners[0]}`)
          ? check("CAS race", "ok", `${racers} concurrent If-Match writes: exactly one won${unknown.length > 0 ? ` (${unknown.length} ambiguous answer(s) settled by re-reading)` : ""}`)
          : check(
            "CAS race",
            "fail",
            `${racers} concurrent If-Match writes on one ETag had ${total} winners${others.length > 0 ? ` and ${others.length} unexpected error(s)` : ""}; this store cannot arbitrate claims, use one that enforces If-Match atomically`
          )
      )
    })
    const cleanup = Stream.runCollect(storage.listAll(prefix)).pipe(
      Effect.flatMap((objects) => storage.deleteMany(Chunk.toReadonlyArray(objects).map((o) => o.key))),
      Effect.ignore
    )
    const outcome = yield* Effect.either(run.pipe(Effect.ensuring(cleanup)))
    if (Either.isLeft(outcome)) {
      checks.push(check("conditional writes", "fail", `the self-test could not write to ${prefix} (${describe(outcome.left)}); check write permission on the bucket`))
    }
    return checks
  })

const isRemote = (config: ResolvedConfig) => config.storage._tag === "S3"

/**
 * Runs every check against the configured store. `storage` opens it (the composition root builds
 * it from `config.storage`); a store that cannot be opened is reported as a failed check.
 */
export const run = Effect.fn("Doctor.run")(function*<E extends { readonly _tag: string; readonly message: string }>(
  config: ResolvedConfig,
  storage: Layer.Layer<Storage, E>
) {
  const checks: Array<Check> = []
  const st = config.storage
  // configuration
  checks.push(
    st._tag === "S3"
      ? check("configuration", "ok", `bucket ${st.bucket}${st.endpoint === undefined ? "" : ` at ${maskUrlCredentials(st.endpoint)}`}, region ${st.region}${st.keyPrefix === "" ? "" : `, key prefix ${st.keyPrefix}`}, shard prefix length ${config.shardPrefixLen}`)
      : st._tag === "File"
      ? check("configuration", st.implicit ? "warn" : "ok", `file store ${st.directory}${st.implicit ? ": no bucket is configured, so the embedded store is used (set S3_BUCKET or --bucket to use a bucket)" : ""}`)
      : check("configuration", "warn", "in-memory store: tasks vanish when the process exits (use --storage s3://BUCKET or file://DIR)")
  )
  if (st._tag === "S3") {
    checks.push(
      st.credentials !== undefined
        ? check("credentials", "ok", `static credentials from AWS_ACCESS_KEY_ID (${st.credentials.accessKeyId.slice(0, 4)}…)`)
        : check("credentials", "warn", "no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: the AWS SDK's chain (profile, instance role) is used; set them if requests are refused")
    )
  }

  const stack = Layer.provideMerge(ServerClockLayer.layer, Layer.provideMerge(CountingStorage.layer, storage))
  const body_ = Effect.gen(function*() {
    const storage = yield* Storage
    const counter = yield* RequestCounter
    // bucket reachable (the ServerClock's build already made requests; this is the explicit one)
    const reach = yield* Effect.either(storage.list("tasks/", { maxKeys: 1 }))
    if (Either.isLeft(reach)) {
      checks.push(check("bucket", "fail", `the bucket cannot be listed (${describe(reach.left)}); check the bucket name, endpoint and credentials`))
      return
    }
    checks.push(check("bucket", "ok", reach.right.objects.length === 0 ? "reachable (no tasks yet)" : "reachable"))
    const caps = yield* Effect.either(storage.capabilities)
    if (Either.isLeft(caps)) {
      checks.push(check("capabilities", "fail", `the capability probe failed (${describe(caps.left)}); retry, and check write permission`))
      return
    }
    const c = caps.right
    const versioned = c.versioning === "enabled"
    checks.push(
      versioned && !c.conditionalWrites
        ? check("versioning", "fail", versionedWithoutConditionalWrites)
        : versioned
        ? check("versioning", "ok", "enabled, and conditional writes still work: full version history is available")
        : check("versioning", "ok", `${c.versioning}: history comes from each task's own transition log`)
    )
    checks.push(...(yield* selfTest(storage)))
    if (isRemote(config)) {
      checks.push(check("ETag quoting", "ok", c.ifMatchEtag === "unquoted" ? "the server wants ETags without quotes in If-Match (detected; handled)" : c.ifMatchEtag === "quoted" ? "ETags are sent quoted in If-Match, as returned (detected)" : "not applicable: If-Match is not enforced"))
      const estimate = yield* (yield* ServerClock).estimate
      const offset = Math.abs(estimate.offsetMillis)
      const unc = Duration.toMillis(estimate.uncertainty)
      checks.push(
        offset > 60_000
          ? check("clock", "warn", `this host's clock is ${(estimate.offsetMillis / 1000).toFixed(1)} s off the server's (±${(unc / 1000).toFixed(1)} s); buquet uses the server's time, but fix the host's NTP`)
          : check("clock", "ok", `offset to the server ${(estimate.offsetMillis / 1000).toFixed(2)} s ± ${(unc / 1000).toFixed(2)} s from ${estimate.samples} response(s); all decisions use the server's time`)
      )
      const counts = yield* counter.snapshot
      const cost = ((counts.PUT + counts.LIST + counts["LIST-VERSIONS"]) * requestPrices.putListPer1000 + (counts.GET + counts.HEAD) * requestPrices.getPer1000) / 1000
      checks.push(check(
        "request prices",
        "ok",
        `AWS S3 Standard: $${(requestPrices.putListPer1000 * 1000).toFixed(2)} per million PUT/LIST, $${(requestPrices.getPer1000 * 1000).toFixed(2)} per million GET; a task costs about 4 PUT + 2 GET + a share of LISTs; this check made ${counts.total} requests (≈ $${cost.toFixed(6)})`
      ))
    } else {
      checks.push(check("clock", "ok", "local store: the host's clock is the store's clock"))
    }
  })
  const built = yield* Effect.either(Effect.scoped(Effect.provide(body_, stack)))
  if (Either.isLeft(built)) {
    checks.push(check("bucket", "fail", `the store cannot be opened (${describe(built.left)}); check the bucket name, endpoint and credentials`))
  }
  return { checks, ok: checks.every((c) => c.status !== "fail") } satisfies DoctorReport
})
