/**
 * One run of a durable workflow execution at a time (issue 18): the execution's lease object
 * (`workflows/{workflow}/{executionId}/lease.json`, key in `domain/WorkflowKeys.ts`), taken and
 * handed over with conditional writes only.
 *
 * An execution's runs are different tasks (the first run, each DurableDeferred's and clock's
 * wake-up, interrupt, resume), so the queue's per-task lease cannot keep two of them apart. A run
 * takes this object before its body runs; its holder is the run's task id, so the same task
 * claimed again (after its worker died or was stopped) takes it back at once, while another task
 * waits for its expiry. A run that finds it held by a live holder does not wait: it sets `rerun`
 * on it (a CAS on the ETag it read) and ends, and the holder, which releases with a CAS on the
 * ETag it wrote, finds the flag and replays the body once more — so the wake-up that run carried
 * (a deferred, a clock, an interrupt, recorded before it looked) is seen, and nothing polls.
 * A holder that dies keeps the object until `expiresAt`; its own task's retry takes it back, or
 * any other run once it expired. The holder extends it every half lease, and stops its body before
 * it runs out (the server clock's uncertainty and a margin kept).
 *
 * @module
 */
import { Duration, Effect, Option, Schema } from "effect"
import { decodeObject, encodeObject } from "../domain/Codec.js"
import { MalformedObject } from "../domain/QueueError.js"
import { leaseKey } from "../domain/WorkflowKeys.js"
import { ServerClock } from "../services/ServerClock.js"
import { Storage } from "../services/Storage.js"
import { putConditional } from "./TaskObjects.js"

/** The stored lease: who holds it until when (server epoch ms), and whether another run asked for a replay. */
export const LeaseRecord = Schema.Struct({
  workflow: Schema.String,
  executionId: Schema.String,
  holder: Schema.NullOr(Schema.String),
  expiresAt: Schema.Number,
  rerun: Schema.Boolean
})

/** The lease as its holder last wrote it. */
export interface HeldLease {
  readonly etag: string
  readonly expiresAt: number
  /** Set by a run that handed its wake-up over (kept by extensions until the release sees it). */
  readonly rerun: boolean
}

/**
 * The run could not take or keep the execution's lease (contention that did not settle, or its
 * lease was taken over after it ran out): its task is retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkflowLeaseLost extends Schema.TaggedError<WorkflowLeaseLost>()("WorkflowLeaseLost", {
  key: Schema.String,
  message: Schema.String
}) {}

/** Who asks, for how long: the lease's identity and length. */
export interface LeaseRequest {
  readonly workflow: string
  readonly executionId: string
  readonly holder: string
  readonly leaseMillis: number
}

/** How many conditional writes lost in a row before a run gives up (its task is retried). */
const maxRounds = 8

const read = (request: LeaseRequest) =>
  Effect.gen(function*() {
    const key = leaseKey(request.workflow, request.executionId)
    const found = yield* Effect.flatMap(Storage, (s) => s.get(key))
    if (Option.isNone(found)) return Option.none<{ readonly record: typeof LeaseRecord.Type; readonly etag: string }>()
    const record = yield* decodeObject(LeaseRecord, key, found.value.body)
    if (record.workflow !== request.workflow || record.executionId !== request.executionId) {
      return yield* new MalformedObject({
        key,
        message: `${key} is malformed: it names execution ${JSON.stringify(record.executionId)} of ${JSON.stringify(record.workflow)}`
      })
    }
    return Option.some({ record, etag: found.value.etag })
  })

const write = (request: LeaseRequest, value: typeof LeaseRecord.Type, condition: { readonly ifNoneMatch: "*" } | { readonly ifMatch: string }) =>
  putConditional(leaseKey(request.workflow, request.executionId), encodeObject(LeaseRecord, value), condition).pipe(
    Effect.map(Option.some),
    Effect.catchTag("PreconditionFailed", () => Effect.succeed(Option.none<string>()))
  )

/** The server time and its uncertainty (1 s while unknown), in ms. */
export const serverNow = Effect.gen(function*() {
  const clock = yield* ServerClock
  const now = yield* clock.currentTimeMillis
  const estimate = yield* clock.estimate
  const uncertainty = Duration.isFinite(estimate.uncertainty) ? Duration.toMillis(estimate.uncertainty) : 1000
  return { now, uncertainty }
})

const lost = (request: LeaseRequest, why: string) =>
  new WorkflowLeaseLost({ key: leaseKey(request.workflow, request.executionId), message: `${leaseKey(request.workflow, request.executionId)}: ${why}` })

/**
 * Takes the execution's lease, or hands this run's wake-up to the live holder (`HandedOver`).
 */
export const acquire = Effect.fn("WorkflowLease.acquire")(function*(request: LeaseRequest) {
  for (let round = 0; round < maxRounds; round++) {
    const { now, uncertainty } = yield* serverNow
    const found = yield* read(request)
    const mine = { workflow: request.workflow, executionId: request.executionId, holder: request.holder, expiresAt: now + request.leaseMillis, rerun: false }
    if (Option.isNone(found)) {
      const etag = yield* write(request, mine, { ifNoneMatch: "*" })
      if (Option.isSome(etag)) return { _tag: "Held", lease: { etag: etag.value, expiresAt: mine.expiresAt, rerun: false } } as const
      continue
    }
    const { record, etag } = found.value
    const free = record.holder === null || record.holder === request.holder || now > record.expiresAt + uncertainty
    if (free) {
      const written = yield* write(request, mine, { ifMatch: etag })
      if (Option.isSome(written)) return { _tag: "Held", lease: { etag: written.value, expiresAt: mine.expiresAt, rerun: false } } as const
      continue
    }
    if (record.rerun) return { _tag: "HandedOver" } as const
    const flagged = yield* write(request, { ...record, rerun: true }, { ifMatch: etag })
    if (Option.isSome(flagged)) return { _tag: "HandedOver" } as const
  }
  return yield* lost(request, `still contended after ${maxRounds} conditional writes`)
})

/** Moves the lease's end to now + its length (keeping a `rerun` another run set); none if it is no longer ours. */
export const extend = Effect.fn("WorkflowLease.extend")(function*(request: LeaseRequest, held: HeldLease) {
  let current = held
  for (let round = 0; round < maxRounds; round++) {
    const { now } = yield* serverNow
    const next = { workflow: request.workflow, executionId: request.executionId, holder: request.holder, expiresAt: now + request.leaseMillis, rerun: current.rerun }
    const written = yield* write(request, next, { ifMatch: current.etag })
    if (Option.isSome(written)) return Option.some<HeldLease>({ etag: written.value, expiresAt: next.expiresAt, rerun: next.rerun })
    const found = yield* read(request)
    if (Option.isNone(found) || found.value.record.holder !== request.holder) return Option.none<HeldLease>()
    current = { etag: found.value.etag, expiresAt: found.value.record.expiresAt, rerun: found.value.record.rerun }
  }
  return yield* lost(request, `still contended after ${maxRounds} conditional writes`)
})

/**
 * Gives the lease up, unless another run asked for a replay meanwhile: then it stays ours (with
 * the flag cleared, before the replay starts, so a later ask is not missed) and the body runs again.
 */
export const release = Effect.fn("WorkflowLease.release")(function*(request: LeaseRequest, held: HeldLease) {
  let current = held
  for (let round = 0; round < maxRounds; round++) {
    const { now } = yield* serverNow
    if (current.rerun) {
      const again = { workflow: request.workflow, executionId: request.executionId, holder: request.holder, expiresAt: now + request.leaseMillis, rerun: false }
      const written = yield* write(request, again, { ifMatch: current.etag })
      if (Option.isSome(written)) return { _tag: "Rerun", lease: { etag: written.value, expiresAt: again.expiresAt, rerun: false } } as const
    } else {
      const free = { workflow: request.workflow, executionId: request.executionId, holder: null, expiresAt: now, rerun: false }
      const written = yield* write(request, free, { ifMatch: current.etag })
      if (Option.isSome(written)) return { _tag: "Released" } as const
    }
    const found = yield* read(request)
    if (Option.isNone(found) || found.value.record.holder !== request.holder) return { _tag: "Lost" } as const
    current = { etag: found.value.etag, expiresAt: found.value.record.expiresAt, rerun: found.value.record.rerun }
  }
  return yield* lost(request, `still contended after ${maxRounds} conditional writes`)
})
