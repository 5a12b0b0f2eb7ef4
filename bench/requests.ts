/**
 * CPU per S3 request, in process, on the real server (RGW): the cost of one request on the lean
 * path, apart from a worker's drain (whose noise is large). Each round is a no-op task's request
 * shape on its own key: PUT If-None-Match, GET, PUT If-Match, HEAD, DELETE; `C` rounds run at a
 * time. `process.cpuUsage()` measures the process's CPU time (user + system); wall time is printed
 * for context only (the machine is shared).
 *
 *   npx tsx bench/requests.ts [rounds=400] [concurrency=8] [modes=raw,storage,counted,raw,storage,counted]
 *
 * Modes (run in the order given, in one process, after one warm-up round of each):
 * - `raw`: S3Http's `send` directly from Promises (signing, node:http, the body collected);
 * - `storage`: S3Storage's service through Effect (the port a worker calls: Effect's wrapping,
 *   the retry schedule, the Date samples, error mapping, response validation);
 * - `counted`: the same under CountingStorage (what the worker's stack adds per request).
 * `BENCH_REQ_PROFILE=1` writes a .cpuprofile per mode (node:inspector).
 *
 * @module
 */
import { Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"
import * as CountingStorage from "../src/layers/CountingStorage.js"
import * as S3Http from "../src/layers/S3Http.js"
import * as S3Storage from "../src/layers/S3Storage.js"
import { Storage, type StorageService } from "../src/services/Storage.js"
import { ensureS3 } from "./lib/env.js"

const rounds = Number(process.argv[2] ?? 400)
const concurrency = Number(process.argv[3] ?? 8)
const modes = (process.argv[4] ?? "raw,storage,counted,raw,storage,counted").split(",")
const profile = process.env["BENCH_REQ_PROFILE"] === "1"
const REQUESTS_PER_ROUND = 5

const target = ensureS3()
const keyPrefix = `bench-req-${randomUUID()}/`
const body = new TextEncoder().encode(JSON.stringify({ id: randomUUID(), taskType: "noop", input: { i: 1 }, state: "ready" }))

/** Runs `one(i)` for i in [0, n) with at most `c` at a time. */
const pool = async (n: number, c: number, one: (i: number) => Promise<void>): Promise<void> => {
  let next = 0
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) await one(next++)
  }))
}

const raw = (): { readonly round: (key: string) => Promise<void>; readonly close: () => void } => {
  const client = S3Http.make({
    url: new URL(`${target.endpoint.replace(/\/$/, "")}/${target.bucket}`),
    region: target.region,
    signingName: "s3",
    credentials: () => Promise.resolve({ accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey }),
    maxSockets: 64,
    requestTimeoutMillis: 30_000
  })
  const headers = { "content-type": "application/json" }
  return {
    round: async (key) => {
      const full = keyPrefix + key
      const created = await client.send({ method: "PUT", key: full, headers: { ...headers, "if-none-match": "*" }, body })
      await client.send({ method: "GET", key: full })
      const etag = String(created.headers.etag).replace(/"/g, "")
      await client.send({ method: "PUT", key: full, headers: { ...headers, "if-match": etag }, body })
      await client.send({ method: "HEAD", key: full })
      await client.send({ method: "DELETE", key: full })
    },
    close: () => client.destroy()
  }
}

const viaStorage = (storage: StorageService) => (key: string): Promise<void> =>
  Effect.runPromise(Effect.gen(function*() {
    const etag = yield* storage.put(key, body, { ifNoneMatch: "*" })
    const got = yield* storage.get(key)
    if (Option.isNone(got)) return yield* Effect.dieMessage(`${key} vanished`)
    yield* storage.put(key, body, { ifMatch: etag })
    yield* storage.head(key)
    yield* storage.delete(key)
  }))

const measure = async (mode: string, round: (key: string) => Promise<void>) => {
  await pool(concurrency, concurrency, (i) => round(`warm-${mode}-${i}`))
  const session = profile ? new Session() : undefined
  if (session !== undefined) {
    session.connect()
    await new Promise<void>((r) => session.post("Profiler.enable", () => session.post("Profiler.start", () => r())))
  }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await pool(rounds, concurrency, (i) => round(`${mode}-${randomUUID()}-${i}`))
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  if (session !== undefined) {
    await new Promise<void>((r) =>
      session.post("Profiler.stop", (_e, result) => {
        const file = `req-${mode}-${Date.now()}.cpuprofile`
        writeFileSync(file, JSON.stringify((result as { profile: unknown }).profile))
        console.error(`[bench] profile written to ${file}`)
        session.disconnect()
        r()
      })
    )
  }
  const n = rounds * REQUESTS_PER_ROUND
  console.log(JSON.stringify({
    mode,
    requests: n,
    concurrency,
    cpuMsPerRequest: Number(((cpu.user + cpu.system) / 1000 / n).toFixed(3)),
    userMsPerRequest: Number((cpu.user / 1000 / n).toFixed(3)),
    systemMsPerRequest: Number((cpu.system / 1000 / n).toFixed(3)),
    wallSeconds: Number((wall / 1000).toFixed(1))
  }))
}

const main = Effect.gen(function*() {
  const storage = yield* Storage
  const counted = (yield* CountingStorage.make(storage)).storage
  const lean = raw()
  yield* Effect.addFinalizer(() => Effect.sync(lean.close))
  const byMode: Record<string, (key: string) => Promise<void>> = {
    raw: lean.round,
    storage: viaStorage(storage),
    counted: viaStorage(counted)
  }
  for (const mode of modes) {
    const round = byMode[mode]
    if (round === undefined) return yield* Effect.dieMessage(`unknown mode ${mode}: raw, storage or counted`)
    yield* Effect.promise(() => measure(mode, round))
  }
}).pipe(
  Effect.provide(Layer.orDie(S3Storage.layer({
    bucket: target.bucket,
    endpoint: target.endpoint,
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    keyPrefix,
    maxSockets: 64
  }))),
  Effect.scoped
)

// exit once stdout is flushed: a pipe's writes are asynchronous, and process.exit would drop them
Effect.runPromise(main).then(() => process.stdout.write("", () => process.exit(0)), (e: unknown) => {
  console.error(e)
  process.exit(1)
})
