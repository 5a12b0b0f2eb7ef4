/**
 * Operator commands: `pause` / `resume` [type], `schema publish|get|list|delete|validate`, `workers`,
 * `repair KEY`.
 *
 * @module
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option, Schema } from "effect"
import * as FileSystem from "@effect/platform/FileSystem"
import type { PauseState } from "../domain/Pause.js"
import { compileSchemas, TaskJsonSchemas, validateAgainst } from "../domain/TaskSchemas.js"
import { isHealthyAt, WorkerView } from "../domain/WorkerRecord.js"
import { repair as repairKey, repairableKeys } from "../programs/Repair.js"
import { readWorkerRecords } from "../protocol/WorkerRecords.js"
import { Queue } from "../services/Queue.js"
import { globalOptions, operationalError, parseJsonArg, printJson, printLine, reportSkipped, toCliError, usageError, withStack } from "./common.js"
import { table, time } from "./format.js"


const optionalType = Args.text({ name: "task-type" }).pipe(Args.withDescription("only this task type (default: every type)"), Args.optional)

const describePause = (s: PauseState): string =>
  s.global
    ? "everything is paused"
    : s.taskTypes.length === 0
    ? "nothing is paused"
    : `paused task types: ${s.taskTypes.join(", ")}`

const pauseJson = (s: PauseState) => ({ global: s.global, task_types: s.taskTypes })

const pauseCommand = (name: "pause" | "resume") =>
  Command.make(name, { ...globalOptions, taskType: optionalType }, (o) =>
    withStack(
      o,
      Effect.gen(function*() {
        const queue = yield* Queue
        const type = Option.getOrUndefined(o.taskType)
        const state = name === "pause" ? yield* queue.pause(type) : yield* queue.resume(type)
        yield* o.json ? printJson(pauseJson(state)) : printLine(describePause(state))
      })
    ).pipe(toCliError)).pipe(
      Command.withDescription(name === "pause" ? "stop claiming tasks (all, or one type)" : "resume claiming tasks")
    )

/** `buquet pause [TYPE]`. */
export const pause = pauseCommand("pause")
/** `buquet resume [TYPE]`. */
export const resume = pauseCommand("resume")

const typeArg = Args.text({ name: "task-type" }).pipe(Args.withDescription("the task type the schemas describe"))

const schemaPublish = Command.make(
  "publish",
  { ...globalOptions, taskType: typeArg, file: Args.text({ name: "file" }).pipe(Args.withDescription("JSON file: {\"input\": …, \"output\": …}")) },
  (o) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs.readFileString(o.file).pipe(
        Effect.mapError(() => usageError(`cannot read ${o.file}; give the path of a JSON file holding {"input": …, "output": …}`))
      )
      const json = yield* parseJsonArg(o.file, text)
      const schemas = yield* Schema.decodeUnknown(TaskJsonSchemas)(json).pipe(
        Effect.mapError(() => usageError(`${o.file} must hold an object with optional "input" and "output" JSON Schemas`))
      )
      yield* withStack(o, Effect.flatMap(Queue, (q) => q.publishSchema(o.taskType, schemas)))
      yield* o.json ? printJson({ task_type: o.taskType, published: true }) : printLine(`Schema of ${o.taskType} published`)
    }).pipe(toCliError)
)

const schemaGet = Command.make("get", { ...globalOptions, taskType: typeArg }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const found = yield* (yield* Queue).getSchema(o.taskType)
      if (Option.isNone(found)) return yield* operationalError(`no schema is published for ${o.taskType}; publish one with \`buquet schema publish ${o.taskType} FILE\``)
      yield* printJson(Schema.encodeSync(TaskJsonSchemas)(found.value))
    })
  ).pipe(toCliError))

const schemaList = Command.make("list", globalOptions, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const types = yield* (yield* Queue).listSchemas
      yield* o.json ? printJson(types) : printLine(types.length === 0 ? "no schemas published" : types.join("\n"))
    })
  ).pipe(toCliError))

const schemaDelete = Command.make("delete", { ...globalOptions, taskType: typeArg }, (o) =>
  withStack(o, Effect.flatMap(Queue, (q) => q.deleteSchema(o.taskType))).pipe(
    Effect.zipRight(o.json ? printJson({ task_type: o.taskType, deleted: true }) : printLine(`Schema of ${o.taskType} deleted`)),
    toCliError
  ))

const schemaValidate = Command.make(
  "validate",
  {
    ...globalOptions,
    taskType: typeArg,
    input: Options.text("input").pipe(Options.withDescription("a JSON input to check"), Options.optional),
    output: Options.text("output").pipe(Options.withDescription("a JSON output to check"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      if (Option.isSome(o.input) === Option.isSome(o.output)) return yield* usageError("give exactly one of --input JSON and --output JSON")
      const which = Option.isSome(o.input) ? "input" : "output"
      const value = yield* parseJsonArg(`--${which}`, Option.getOrElse(Option.orElse(o.input, () => o.output), () => ""))
      yield* withStack(
        o,
        Effect.gen(function*() {
          const found = yield* (yield* Queue).getSchema(o.taskType)
          if (Option.isNone(found)) return yield* operationalError(`no schema is published for ${o.taskType}; publish one with \`buquet schema publish\``)
          const compiled = yield* compileSchemas(o.taskType, found.value)
          yield* validateAgainst(o.taskType, which, compiled[which], value).pipe(
            Effect.mapError((e) => operationalError(e.message))
          )
        })
      )
      yield* o.json ? printJson({ task_type: o.taskType, which, valid: true }) : printLine(`✓ the ${which} matches the schema of ${o.taskType}`)
    }).pipe(toCliError)
)

/** `buquet schema publish|get|list|delete|validate`. */
export const schema = Command.make("schema").pipe(
  Command.withDescription("publish and check JSON Schemas of task types"),
  Command.withSubcommands([
    schemaPublish.pipe(Command.withDescription("publish the input and output JSON Schemas of a task type (submits are checked against them)")),
    schemaGet.pipe(Command.withDescription("print the JSON Schemas published for a task type")),
    schemaList.pipe(Command.withDescription("list the task types with published schemas")),
    schemaDelete.pipe(Command.withDescription("delete the JSON Schemas of a task type")),
    schemaValidate.pipe(Command.withDescription("check a JSON input or output against a task type's published schema"))
  ])
)

/** `buquet workers`: the registered workers and their health. */
export const workers = Command.make("workers", globalOptions, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const queue = yield* Queue
      const now = yield* queue.now
      const { malformed, records } = yield* readWorkerRecords
      yield* reportSkipped(malformed)
      if (o.json) {
        return yield* printJson(records.map((r) => ({ ...Schema.encodeSync(WorkerView)(r), healthy: isHealthyAt(r, now) })))
      }
      yield* printLine(records.length === 0 ? "no workers registered" : table(
        ["WORKER", "HEALTH", "HEARTBEAT", "RUNNING", "DONE", "FAILED", "VERSION", "TYPES"],
        records.map((r) => [
          r.workerId,
          isHealthyAt(r, now) ? "healthy" : r.status === "stopping" ? "stopping" : "stale",
          time(r.lastHeartbeat),
          String(r.currentTasks?.length ?? (r.currentTask === undefined ? 0 : 1)),
          String(r.tasksCompleted),
          String(r.tasksFailed),
          r.buquetVersion ?? "-",
          // an older worker's record does not list its types: unknown, not none
          r.taskTypes === undefined ? "unknown" : r.taskTypes.join(",")
        ])
      ))
    })
  ).pipe(toCliError)).pipe(Command.withDescription("list workers and their health"))

/** `buquet repair KEY`: removes a stored control object that no longer decodes. */
export const repair = Command.make(
  "repair",
  {
    ...globalOptions,
    key: Args.text({ name: "key" }).pipe(Args.withDescription(`the object to repair: ${repairableKeys.join(", ")}`))
  },
  (o) =>
    withStack(
      o,
      Effect.gen(function*() {
        const outcome = yield* repairKey(o.key)
        if (o.json) {
          return yield* printJson({
            key: outcome.key,
            outcome: outcome._tag.toLowerCase(),
            ...(outcome._tag === "Removed" ? { problem: outcome.problem, meaning: outcome.meaning } : {})
          })
        }
        yield* printLine(
          outcome._tag === "Missing"
            ? `${outcome.key} does not exist; nothing to repair`
            : outcome._tag === "Valid"
            ? `${outcome.key} is valid; nothing to repair`
            : `removed ${outcome.key} (${outcome.problem})\n${outcome.meaning}`
        )
      })
    ).pipe(toCliError)
).pipe(Command.withDescription("remove a control object that no longer decodes (pause switches, a leader lease, a schema)"))
