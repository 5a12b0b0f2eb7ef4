/**
 * Task commands: `submit`, `get` (alias `status`), `history`, `list`, `cancel`, `replay`, `archive`.
 * Each is a thin shell over one Queue call.
 *
 * @module
 */
import { Args, Command, Options } from "@effect/cli"
import { Duration, Effect, Logger, Option } from "effect"
import type { SubmitOptions } from "../domain/SubmitOptions.js"
import { TaskNotFound } from "../domain/TaskErrors.js"
import { allStatuses } from "../domain/TaskStatus.js"
import { Queue } from "../services/Queue.js"
import { listSorts } from "../services/Queue.js"
import type { CancelManyResult } from "../services/Queue.js"
import { globalOptions, operationalError, parseDurationArg, parseInstantArg, parseJsonArg, parseStatusArg, printJson, printLine, reportSkipped, settingFlags, toCliError, usageError, withStack } from "./common.js"
import type { Globals } from "./common.js"
import { resolveIdArg } from "./ids.js"
import { pendingHandling, withHandling } from "./handling.js"
import { safeLogger, warningsToStderr } from "./logging.js"
import { describeHandling } from "../domain/TypeCoverage.js"
import { type ChildState, describeEvent, describeTask, eventJson, table, taskJson, time } from "./format.js"

const taskId = Args.text({ name: "task-id" }).pipe(Args.withDescription("the task's id (a UUID, or a unique prefix of 6+ characters)"))

const optInt = (name: string, description: string) =>
  Options.integer(name).pipe(Options.withDescription(description), Options.optional)
const optText = (name: string, description: string) =>
  Options.text(name).pipe(Options.withDescription(description), Options.optional)

const submitOptions = {
  ...globalOptions,
  taskType: Options.text("task-type").pipe(Options.withAlias("t"), Options.withDescription("the task type")),
  input: Options.text("input").pipe(
    Options.withAlias("i"),
    Options.withDescription("the input as JSON (default {})"),
    Options.withDefault("{}")
  ),
  timeout: optInt("timeout", "lease length of one attempt, in seconds (default 300)"),
  retries: optInt("retries", "retries after the first attempt (default 3)"),
  maxReschedules: optInt("max-reschedules", "how often a handler may reschedule the task"),
  delay: optText("delay", "run after this long, e.g. 30s, 5m, 1h (server time)"),
  at: optText("at", "run at this RFC 3339 time"),
  ttl: optText("ttl", "expire if not started within this long, e.g. 1h"),
  expiresAt: optText("expires-at", "expire if not started by this RFC 3339 time"),
  priority: optInt("priority", "0 (default) to 9999: higher runs first within a shard"),
  idempotencyKey: optText("idempotency-key", "submits with the same key make one task"),
  typeCheck: Options.choice("type-check", ["warn", "strict", "off"] as const).pipe(
    Options.withDescription("when no worker has ever registered a handler for the type: warn (default), strict (refuse, exit 2) or off"),
    Options.optional
  )
}

/** `buquet submit -t TYPE -i JSON [options]`. */
export const submit = Command.make("submit", submitOptions, (o) =>
  Effect.gen(function*() {
    const input = yield* parseJsonArg("--input", o.input)
    if (Option.isSome(o.delay) && Option.isSome(o.at)) return yield* usageError("give either --delay or --at, not both")
    if (Option.isSome(o.ttl) && Option.isSome(o.expiresAt)) return yield* usageError("give either --ttl or --expires-at, not both")
    const delay = Option.isSome(o.delay) ? yield* parseDurationArg("--delay", o.delay.value) : undefined
    const ttl = Option.isSome(o.ttl) ? yield* parseDurationArg("--ttl", o.ttl.value) : undefined
    const at = Option.isSome(o.at) ? yield* parseInstantArg("--at", o.at.value) : undefined
    const expiresAt = Option.isSome(o.expiresAt) ? yield* parseInstantArg("--expires-at", o.expiresAt.value) : undefined
    const options: SubmitOptions = {
      timeoutSeconds: Option.getOrUndefined(o.timeout),
      maxRetries: Option.getOrUndefined(o.retries),
      maxReschedules: Option.getOrUndefined(o.maxReschedules),
      delay,
      scheduleAt: at,
      ttlSeconds: ttl === undefined ? undefined : Duration.toSeconds(ttl),
      expiresAt,
      priority: Option.getOrUndefined(o.priority),
      idempotencyKey: Option.getOrUndefined(o.idempotencyKey)
    }
    yield* withStack(
      o,
      Effect.gen(function*() {
        const queue = yield* Queue
        const task = yield* queue.submit(o.taskType, input, options).pipe(Effect.provide(Logger.replace(safeLogger, warningsToStderr)))
        if (o.json) return yield* printJson(taskJson(task))
        const when = task.availableAt > task.createdAt ? ` (runs at ${time(task.availableAt)})` : ""
        const expiry = task.expiresAt === undefined ? "" : ` (expires at ${time(task.expiresAt)})`
        yield* printLine(`Task submitted: ${task.id}${when}${expiry}`)
      }),
      { settingFlags: settingFlags([["queue.type_check", o.typeCheck]]) }
    )
  }).pipe(toCliError)).pipe(Command.withDescription("submit a task"))

const getHandler = (o: Globals & { readonly taskId: string }) =>
  withStack(
    o,
    Effect.gen(function*() {
      const queue = yield* Queue
      const id = yield* resolveIdArg(o.taskId)
      const task = yield* queue.get(id).pipe(Effect.flatMap(Option.match({
        onNone: () => Effect.fail(TaskNotFound.of(id)),
        onSome: Effect.succeed
      })))
      const handling = yield* pendingHandling([task])
      // a flow's parent: each child's current state (one GET per child)
      const children = task.flow === undefined ? undefined : yield* Effect.forEach(task.flow.children, (c) =>
        Effect.map(queue.get(c.id), (found): ChildState => ({ id: c.id, taskType: c.taskType, status: Option.match(found, { onNone: () => "missing", onSome: (t) => t.status }) })), { concurrency: 8 })
      if (o.json) {
        const json = withHandling(taskJson(task), task, handling)
        return yield* printJson(children === undefined ? json : { ...(json as Record<string, unknown>), children: children.map((c) => ({ id: c.id, task_type: c.taskType, status: c.status })) })
      }
      const input = yield* queue.loadInput(task)
      const output = yield* queue.loadOutput(task)
      yield* printLine(describeTask(task, input, output, children))
      const h = handling.get(task.taskType)
      if (h !== undefined && h !== "handled") yield* printLine(`${h === "unhandled" ? "! " : ""}${describeHandling(h, task.taskType)}`)
    })
  ).pipe(toCliError)

/** `buquet get ID`: a task's fields. */
export const get = Command.make("get", { ...globalOptions, taskId }, getHandler).pipe(
  Command.withDescription("show a task")
)

/** `buquet status ID`: the reference's name for `get`. */
export const status = Command.make("status", { ...globalOptions, taskId }, getHandler).pipe(
  Command.withDescription("show a task (alias of get)")
)

/** `buquet history ID`: the task's transitions (and S3 versions where the bucket keeps them). */
export const history = Command.make("history", { ...globalOptions, taskId }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const queue = yield* Queue
      const h = yield* queue.history(yield* resolveIdArg(o.taskId))
      if (o.json) {
        return yield* printJson({
          task_id: h.taskId,
          events: h.events.map(eventJson),
          versions: h.versions.map((v) => ({
            version_id: v.versionId,
            last_modified: time(v.lastModified),
            is_latest: v.isLatest,
            status: v.task?.status ?? null
          }))
        })
      }
      yield* printLine(h.events.length === 0 ? "no transitions recorded" : h.events.map(describeEvent).join("\n"))
      if (h.versions.length > 0) {
        yield* printLine(`\n${h.versions.length} stored versions (newest first):`)
        yield* printLine(h.versions.map((v, i) => `  ${i + 1}. ${v.task?.status ?? "(deleted)"} at ${time(v.lastModified)}`).join("\n"))
      }
    })
  ).pipe(toCliError)).pipe(Command.withDescription("show a task's transitions"))


/** `buquet list [SHARD] [--status S] [--type T] [--shard X] [--limit N]`. */
export const list = Command.make(
  "list",
  {
    ...globalOptions,
    shardArg: Args.text({ name: "shard" }).pipe(Args.withDescription("only this shard (same as --shard)"), Args.optional),
    status: optText("status", `only tasks in this status (${allStatuses.join(", ")})`),
    taskType: optText("type", "only tasks of this type").pipe(Options.withAlias("t"), Options.withAlias("task-type")),
    shard: optText("shard", "only this shard (default: all)").pipe(Options.withAlias("s")),
    limit: Options.integer("limit").pipe(Options.withDescription("most tasks to show, 1–1000"), Options.withDefault(100)),
    cursor: optText("cursor", "continue after the previous page"),
    sort: Options.choice("sort", listSorts).pipe(
      Options.withDescription("created (newest first, the default), created-asc, updated (newest first) or key (storage order: reads one page, not every task)"),
      Options.withDefault("created" as const)
    )
  },
  (o) =>
    Effect.gen(function*() {
      if (o.limit < 1 || o.limit > 1000) return yield* usageError(`--limit must be from 1 to 1000, got ${o.limit}`)
      const status = Option.isSome(o.status) ? yield* parseStatusArg("--status", o.status.value) : undefined
      if (Option.isSome(o.shardArg) && Option.isSome(o.shard) && o.shardArg.value !== o.shard.value) {
        return yield* usageError(`give the shard once: as an argument (${o.shardArg.value}) or with --shard (${o.shard.value})`)
      }
      const shard = Option.orElse(o.shardArg, () => o.shard)
      yield* withStack(
        o,
        Effect.gen(function*() {
          const queue = yield* Queue
          const page = yield* queue.list({
            status,
            taskType: Option.getOrUndefined(o.taskType),
            shard: Option.getOrUndefined(shard),
            limit: o.limit,
            cursor: Option.getOrUndefined(o.cursor),
            sort: o.sort
          })
          const handling = yield* pendingHandling(page.tasks)
          if (o.json) {
            return yield* printJson({
              tasks: page.tasks.map((t) => withHandling(taskJson(t), t, handling)),
              cursor: page.cursor ?? null,
              scanned: page.scanned,
              matched: page.matched ?? null,
              malformed: page.malformed.map((m) => ({ key: m.key, message: m.message }))
            })
          }
          yield* printLine(
            table(
              ["ID", "TYPE", "STATUS", "ATTEMPT", "CREATED", "UPDATED"],
              page.tasks.map((t) => [
                t.id,
                t.taskType,
                t.status === "pending" && handling.get(t.taskType) === "unhandled" ? "pending (no worker)" : t.status,
                String(t.attempt),
                time(t.createdAt),
                time(t.updatedAt)
              ])
            )
          )
          const of = page.matched === undefined ? "" : ` of ${page.matched} matching`
          yield* printLine(`${page.tasks.length} task(s)${of}${page.cursor === undefined ? "" : `; more with --cursor ${page.cursor}`}`)
          const unhandled = [...handling].filter(([, h]) => h === "unhandled").map(([t]) => t)
          if (unhandled.length > 0) {
            yield* printLine(`! no live worker handles ${unhandled.join(", ")}: those tasks stay pending until one that does starts (check the spelling; see \`buquet workers\`)`)
          }
          yield* reportSkipped(page.malformed)
        })
      )
    }).pipe(toCliError)
).pipe(Command.withDescription("list tasks"))

const describeCancel = (r: CancelManyResult): string =>
  r._tag === "Done" ? `${r.taskId}  ${r.outcome}` : `${r.taskId}  failed: ${r.error.message}`

/** `buquet cancel ID… | --type T [--reason R] [--cancelled-by WHO]`: one outcome per task. */
export const cancel = Command.make(
  "cancel",
  {
    ...globalOptions,
    ids: Args.text({ name: "task-id" }).pipe(Args.withDescription("task ids (or unique prefixes of 6+ characters)"), Args.repeated),
    taskType: optText("type", "cancel every unfinished task of this type").pipe(Options.withAlias("t"), Options.withAlias("task-type")),
    reason: optText("reason", "why (stored with the task)").pipe(Options.withAlias("r")),
    cancelledBy: optText("cancelled-by", "who cancels (stored in cancelled_by; default cli)").pipe(Options.withAlias("b"))
  },
  (o) =>
    Effect.gen(function*() {
      if (o.ids.length === 0 && Option.isNone(o.taskType)) {
        return yield* usageError("give task ids or --type TYPE to say what to cancel")
      }
      if (o.ids.length > 0 && Option.isSome(o.taskType)) return yield* usageError("give either task ids or --type, not both")
      const results = yield* withStack(
        o,
        Effect.gen(function*() {
          const queue = yield* Queue
          const options = { reason: Option.getOrUndefined(o.reason), cancelledBy: Option.getOrElse(o.cancelledBy, () => "cli") }
          return Option.isSome(o.taskType)
            ? yield* queue.cancelByType(o.taskType.value, options)
            : yield* queue.cancelMany(yield* Effect.forEach(o.ids, resolveIdArg), options)
        })
      )
      if (o.json) {
        yield* printJson(results.map((r) =>
          r._tag === "Done"
            ? { task_id: r.taskId, outcome: r.outcome }
            : { task_id: r.taskId, outcome: "error", error: r.error.message }
        ))
      } else {
        yield* printLine(results.length === 0 ? "nothing to cancel" : results.map(describeCancel).join("\n"))
      }
      const failed = results.filter((r) => r._tag === "Failed")
      const missing = results.filter((r) => r._tag === "Done" && r.outcome === "not_found").map((r) => r.taskId)
      if (failed.length === 0 && missing.length > 0) {
        return yield* operationalError(
          missing.length === 1
            ? `task ${missing[0]} does not exist; check the id (list tasks with \`buquet list\`)`
            : `${missing.length} tasks do not exist (${missing.join(", ")}); check the ids (list tasks with \`buquet list\`)`
        )
      }
      if (failed.length > 0) {
        const bad = failed.find((r) => r._tag === "Failed" && r.error._tag === "InvalidArgument")
        return yield* (bad !== undefined && bad._tag === "Failed"
          ? usageError(bad.error.message)
          : operationalError(`${failed.length} cancel(s) failed; run the command again to retry them`))
      }
    }).pipe(toCliError)
).pipe(Command.withDescription("cancel tasks by id or by type"))

/** `buquet replay ID`: a failed/cancelled/expired task runs again with a fresh budget. */
export const replay = Command.make("replay", { ...globalOptions, taskId }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const task = yield* (yield* Queue).replay(yield* resolveIdArg(o.taskId))
      yield* o.json ? printJson(taskJson(task)) : printLine(`Task ${task.id} replayed: ${task.status}`)
    })
  ).pipe(toCliError)).pipe(Command.withDescription("run a failed, cancelled or expired task again"))

/** `buquet archive ID`. */
export const archive = Command.make("archive", { ...globalOptions, taskId }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const task = yield* (yield* Queue).archive(yield* resolveIdArg(o.taskId))
      yield* o.json ? printJson(taskJson(task)) : printLine(`Task ${task.id} archived`)
    })
  ).pipe(toCliError)).pipe(Command.withDescription("archive a finished task"))
