/**
 * A separate OS process racing on a FileStorage directory, for the multi-process tests
 * (`test/storage/FileStorage.multiprocess.test.ts`).
 *
 * Usage: `node --import tsx fileStorageWorker.ts race <dir> <worker> <rounds> <increments>`
 *        `node --import tsx fileStorageWorker.ts hold-lock <lockFile> <ageMillis> [temp]`
 *
 * `race` waits for the key `go`, then for each round r CASes `rounds/r` from the shared start
 * ETag and create-only-writes `created/r`, then increments `counter` by read + CAS until it
 * succeeded `increments` times. It prints one JSON line with what it won.
 * `hold-lock` writes a lock file in FileStorage's format with its own pid, prints "held", and
 * waits to be killed; with `temp` it first leaves a half-written temp object beside the key, named
 * as FileStorage names its own (`<segment>.tmp-<pid>-<uuid>`).
 */
import { writeFileSync } from "node:fs"
import { randomUUID } from "node:crypto"
import { Effect, Either, Option, Schedule } from "effect"
import * as FileStorage from "../../../src/layers/FileStorage.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const race = (dir: string, worker: string, rounds: number, increments: number) =>
  Effect.gen(function*() {
    const storage = yield* FileStorage.make(dir)
    // Read before the start signal: once racing, rounds/0 may already hold a winner's body.
    const startEtag = Option.getOrThrow(yield* storage.head("rounds/0")).etag
    console.log(JSON.stringify({ ready: worker }))
    yield* storage.head("go").pipe(
      Effect.flatMap((o) => (Option.isSome(o) ? Effect.void : Effect.fail("wait" as const))),
      Effect.retry(Schedule.spaced("2 millis"))
    )
    const casWins: Array<number> = []
    const createWins: Array<number> = []
    const otherErrors: Array<string> = []
    for (let r = 0; r < rounds; r++) {
      const cas = yield* Effect.either(storage.put(`rounds/${r}`, encoder.encode(`winner ${worker}`), { ifMatch: startEtag }))
      if (Either.isRight(cas)) casWins.push(r)
      else if (cas.left._tag !== "PreconditionFailed") otherErrors.push(cas.left._tag)
      const created = yield* Effect.either(storage.put(`created/${r}`, encoder.encode(`creator ${worker}`), { ifNoneMatch: "*" }))
      if (Either.isRight(created)) createWins.push(r)
      else if (created.left._tag !== "PreconditionFailed") otherErrors.push(created.left._tag)
    }
    let done = 0
    let conflicts = 0
    while (done < increments) {
      const current = Option.getOrThrow(yield* storage.get("counter"))
      const next = Number(decoder.decode(current.body)) + 1
      const result = yield* Effect.either(storage.put("counter", encoder.encode(String(next)), { ifMatch: current.etag }))
      if (Either.isRight(result)) done++
      else if (result.left._tag === "PreconditionFailed") conflicts++
      else otherErrors.push(result.left._tag)
    }
    console.log(JSON.stringify({ worker, casWins, createWins, conflicts, otherErrors }))
  })

const holdLock = (lockFile: string, ageMillis: number, temp: boolean) =>
  Effect.gen(function*() {
    if (temp) writeFileSync(`${lockFile.slice(0, -".lock".length)}.tmp-${process.pid}-${randomUUID()}`, "BQ1 {")
    const at = (yield* Effect.clockWith((c) => c.currentTimeMillis)) - ageMillis
    writeFileSync(lockFile, JSON.stringify({ pid: process.pid, at, token: randomUUID() }), { flag: "wx" })
    console.log("held")
    yield* Effect.never
  })

const [mode, ...args] = process.argv.slice(2)
const program = mode === "race"
  ? race(args[0]!, args[1]!, Number(args[2]), Number(args[3]))
  : holdLock(args[0]!, Number(args[1]), args[2] === "temp")

Effect.runPromise(program as Effect.Effect<void, unknown>).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  }
)
