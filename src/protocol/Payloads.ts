/**
 * Payload references: inputs and outputs whose JSON is larger than a threshold (256 KiB by
 * default) live in `payloads/{id}/input.json` and `payloads/{id}/output-{leaseId}.json` (one key
 * per attempt, so the payload collector's late DELETE of an older run's output never removes a
 * newer run's; outputs at the reference's `output.json` are still read); the task keeps `input_ref` /
 * `output_ref` and `null` in place. Handlers and readers see the real value ({@link loadInput},
 * {@link loadOutput}); the worker offloads outputs with {@link offloadOutput}; payloads are deleted
 * with their task ({@link deletePayloads}).
 *
 * @module
 */
import { Effect, Option } from "effect"
import { attemptOutputKey, isOwnPayloadRef, payloadKey, payloadPrefix } from "../domain/Keys.js"
import { MalformedObject } from "../domain/QueueError.js"
import type { Task } from "../domain/Task.js"
import { PayloadMissing } from "../domain/TaskErrors.js"
import { utf8 } from "../domain/Codec.js"
import { Storage } from "../services/Storage.js"
import { keyOfTask, putPlain } from "./TaskObjects.js"

/** A JSON value ready to store: inline (`ref` absent) or offloaded (`value` null, `ref` the key). */
export interface PayloadPlacement {
  readonly value: unknown
  readonly ref: string | undefined
}

const decoder = new TextDecoder()

const place = Effect.fnUntraced(function*(key: string, value: unknown, thresholdBytes: number) {
  const body = utf8(JSON.stringify(value ?? null))
  if (body.length <= thresholdBytes) return { value, ref: undefined } satisfies PayloadPlacement
  yield* putPlain(key, body)
  return { value: null, ref: key } satisfies PayloadPlacement
})

/**
 * Writes a submit's input (already JSON) to `payloads/{taskId}/input.json` if its compact JSON is
 * larger than `thresholdBytes`, else keeps it inline.
 */
export const offloadInput = (taskId: string, input: unknown, thresholdBytes: number) =>
  place(payloadKey(taskId, "input"), input, thresholdBytes)

/**
 * Offloads the output of the attempt holding `leaseId` when large, to that attempt's own key: pass
 * the result to `Transitions.complete` as `{ output: value, outputRef: ref }`.
 */
export const offloadOutput = (taskId: string, leaseId: string, output: unknown, thresholdBytes: number) =>
  place(attemptOutputKey(taskId, leaseId), output, thresholdBytes)

const load = (task: Task, which: "input" | "output") =>
  Effect.gen(function*() {
    const ref = which === "input" ? task.inputRef : task.outputRef
    if (ref === undefined) return which === "input" ? task.input : task.output
    // a task may only point at its own payload (the read path checks this too; loaders are reachable with any Task)
    if (!isOwnPayloadRef(task.id, which, ref)) {
      const key = keyOfTask(task)
      return yield* new MalformedObject({
        key,
        message: `${key} is malformed: its ${which}_ref ${JSON.stringify(ref)} is not one of this task's ${which} payloads (${payloadKey(task.id, which)}${which === "output" ? ` or ${payloadPrefix(task.id)}output-{lease id}.json` : ""})`
      })
    }
    const storage = yield* Storage
    const found = yield* storage.get(ref)
    if (Option.isNone(found)) {
      return yield* new PayloadMissing({
        taskId: task.id,
        key: ref,
        message: `the ${which} of task ${task.id} was offloaded to ${ref}, which no longer exists; replay or resubmit the task`
      })
    }
    return yield* Effect.try({
      try: () => JSON.parse(decoder.decode(found.value.body)) as unknown,
      catch: (e) => new MalformedObject({ key: ref, message: `${ref} is not valid JSON: ${(e as Error).message}` })
    })
  })

/** The task's input: inline, or loaded from its payload reference. */
export const loadInput = (task: Task) => load(task, "input")

/** The task's output: inline, or loaded from its payload reference. */
export const loadOutput = (task: Task) => load(task, "output")

/**
 * Deletes a deleted task's payload objects (missing ones are fine): the fixed keys and the ones its
 * last version referenced. Outputs of attempts it never referenced are left to the sweeper's
 * payload collection (listing every task's payloads here would cost a LIST per retention delete).
 */
export const deletePayloads = Effect.fn("Payloads.deletePayloads")(function*(taskId: string, last?: Task) {
  const storage = yield* Storage
  const keys = new Set([payloadKey(taskId, "input"), payloadKey(taskId, "output")])
  if (last?.inputRef !== undefined && isOwnPayloadRef(taskId, "input", last.inputRef)) keys.add(last.inputRef)
  if (last?.outputRef !== undefined && isOwnPayloadRef(taskId, "output", last.outputRef)) keys.add(last.outputRef)
  yield* storage.deleteMany([...keys])
})
