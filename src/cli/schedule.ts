/**
 * `buquet schedule create|list|show|update|enable|disable|delete|trigger|run`: thin shells over the
 * Scheduler service and the SchedulerLoop program.
 *
 * @module
 */
import { Args, Command, Options } from "@effect/cli"
import { DateTime, Duration, Effect, Option, Schema } from "effect"
import { Schedule as ScheduleRecord } from "../domain/Schedule.js"
import type { ScheduleUpdate } from "../domain/Schedule.js"
import * as SchedulerLoop from "../programs/SchedulerLoop.js"
import { Scheduler } from "../services/Scheduler.js"
import { ServerClock } from "../services/ServerClock.js"
import {
  globalOptions,
  operationalError,
  parseJsonArg,
  printJson,
  printLine,
  reportSkipped,
  stderrLine,
  toCliError,
  usageError,
  withStack
} from "./common.js"
import { table, time } from "./format.js"
import { untilStopRequested } from "./stop.js"

const idArg = Args.text({ name: "schedule-id" }).pipe(Args.withDescription("the schedule's id: letters, digits and _ . : @ -"))
const optInt = (name: string, description: string) => Options.integer(name).pipe(Options.withDescription(description), Options.optional)
const optText = (name: string, description: string) => Options.text(name).pipe(Options.withDescription(description), Options.optional)

const scheduleJson = (s: ScheduleRecord) => Schema.encodeSync(ScheduleRecord)(s)

/**
 * Whether a scheduler runs (someone holds its leader lease); when none does, says on stderr that
 * schedules will not fire and how to start one. An unreadable lease is said too, not fatal.
 */
const checkScheduler = SchedulerLoop.isRunning.pipe(
  Effect.tap((running) =>
    running ? Effect.void : stderrLine(`buquet: ${SchedulerLoop.notRunningAdvice}`)
  ),
  Effect.catchTag("MalformedObject", (e) =>
    Effect.as(stderrLine(`buquet: cannot tell whether a scheduler is running: ${e.message}`), true))
)

const definitionOptions = {
  timezone: optText("timezone", "IANA time zone the cron is read in (default UTC)"),
  timeout: optInt("timeout", "timeout_seconds of each firing's task"),
  retries: optInt("retries", "max_retries of each firing's task"),
  priority: optInt("priority", "priority of each firing's task (0–9999)"),
  missed: Options.choice("missed", ["skip", "once", "all"] as const).pipe(Options.withDescription("what to do with missed firings (default once)"), Options.optional)
}

const create = Command.make(
  "create",
  {
    ...globalOptions,
    id: idArg,
    taskType: Options.text("task-type").pipe(Options.withAlias("t"), Options.withDescription("the task type to submit")),
    input: Options.text("input").pipe(Options.withAlias("i"), Options.withDefault("{}"), Options.withDescription("JSON input of every firing")),
    cron: Options.text("cron").pipe(Options.withAlias("c"), Options.withDescription("5-field cron, e.g. \"0 3 * * *\"")),
    ...definitionOptions
  },
  (o) =>
    Effect.gen(function*() {
      const input = yield* parseJsonArg("--input", o.input)
      yield* withStack(
        o,
        Effect.gen(function*() {
          const created = yield* (yield* Scheduler).create({
            id: o.id,
            taskType: o.taskType,
            input,
            cron: o.cron,
            timezone: Option.getOrUndefined(o.timezone),
            timeoutSeconds: Option.getOrUndefined(o.timeout),
            maxRetries: Option.getOrUndefined(o.retries),
            priority: Option.getOrUndefined(o.priority),
            missed: Option.getOrUndefined(o.missed)
          })
          const running = yield* checkScheduler
          if (o.json) {
            return yield* printJson({ schedule: scheduleJson(created.schedule), next_runs: created.nextRuns.map(time), scheduler_running: running })
          }
          yield* printLine(`Schedule ${o.id} created; next runs: ${created.nextRuns.slice(0, 3).map(time).join(", ") || "never"}`)
        })
      )
    }).pipe(toCliError)
)

const list = Command.make("list", globalOptions, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const { malformed, schedules } = yield* (yield* Scheduler).listDetailed
      yield* reportSkipped(malformed)
      if (schedules.length > 0) yield* checkScheduler
      if (o.json) return yield* printJson(schedules.map(scheduleJson))
      yield* printLine(schedules.length === 0 ? "no schedules" : table(
        ["ID", "TYPE", "CRON", "TZ", "ENABLED"],
        schedules.map((s) => [s.id, s.taskType, s.cron, s.timezone ?? "UTC", s.enabled ? "yes" : "no"])
      ))
    })
  ).pipe(toCliError))

const show = Command.make("show", { ...globalOptions, id: idArg }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const st = yield* (yield* Scheduler).status(o.id)
      const last = Option.getOrUndefined(st.lastRun)
      const running = yield* checkScheduler
      const now = yield* (yield* ServerClock).now
      const overdue = !running && Option.isSome(st.nextRun) && DateTime.lessThan(st.nextRun.value, now)
      if (o.json) {
        return yield* printJson({
          schedule: scheduleJson(st.schedule),
          last_run_at: last === undefined ? null : time(last.lastRunAt),
          last_task_id: last?.lastTaskId ?? null,
          last_run_malformed: Option.match(st.lastRunMalformed, { onNone: () => null, onSome: (m) => m.message }),
          next_run_at: Option.match(st.nextRun, { onNone: () => null, onSome: time }),
          scheduler_running: running,
          overdue
        })
      }
      const s = st.schedule
      yield* printLine([
        `id         ${s.id}`,
        `type       ${s.taskType}`,
        `cron       ${s.cron} (${s.timezone ?? "UTC"})`,
        `enabled    ${s.enabled ? "yes" : "no"}`,
        `input      ${JSON.stringify(s.input)}`,
        `last run   ${
          Option.isSome(st.lastRunMalformed)
            ? `unreadable: ${st.lastRunMalformed.value.message}`
            : last === undefined
            ? "never"
            : `${time(last.lastRunAt)} (task ${last.lastTaskId})`
        }`,
        `next run   ${Option.match(st.nextRun, { onNone: () => "never", onSome: time })}${
          overdue ? " (overdue: no scheduler is running)" : ""
        }`
      ].join("\n"))
    })
  ).pipe(toCliError))

const update = Command.make(
  "update",
  {
    ...globalOptions,
    id: idArg,
    taskType: optText("task-type", "a new task type").pipe(Options.withAlias("t")),
    input: optText("input", "a new JSON input").pipe(Options.withAlias("i")),
    cron: optText("cron", "a new cron").pipe(Options.withAlias("c")),
    ...definitionOptions
  },
  (o) =>
    Effect.gen(function*() {
      const input = Option.isSome(o.input) ? yield* parseJsonArg("--input", o.input.value) : undefined
      const change: ScheduleUpdate = {
        ...(Option.isSome(o.taskType) ? { taskType: o.taskType.value } : {}),
        ...(Option.isSome(o.input) ? { input } : {}),
        ...(Option.isSome(o.cron) ? { cron: o.cron.value } : {}),
        ...(Option.isSome(o.timezone) ? { timezone: o.timezone.value } : {}),
        ...(Option.isSome(o.timeout) ? { timeoutSeconds: o.timeout.value } : {}),
        ...(Option.isSome(o.retries) ? { maxRetries: o.retries.value } : {}),
        ...(Option.isSome(o.priority) ? { priority: o.priority.value } : {}),
        ...(Option.isSome(o.missed) ? { missed: o.missed.value } : {})
      }
      yield* withStack(
        o,
        Effect.gen(function*() {
          const updated = yield* (yield* Scheduler).update(o.id, change)
          yield* o.json
            ? printJson({ schedule: scheduleJson(updated.schedule), next_runs: updated.nextRuns.map(time) })
            : printLine(`Schedule ${o.id} updated; next run: ${updated.nextRuns[0] === undefined ? "never" : time(updated.nextRuns[0])}`)
        })
      )
    }).pipe(toCliError)
)

const toggle = (name: "enable" | "disable") =>
  Command.make(name, { ...globalOptions, id: idArg }, (o) =>
    withStack(
      o,
      Effect.gen(function*() {
        const scheduler = yield* Scheduler
        const s = name === "enable" ? yield* scheduler.enable(o.id) : yield* scheduler.disable(o.id)
        yield* o.json ? printJson(scheduleJson(s)) : printLine(`Schedule ${o.id} ${name}d`)
      })
    ).pipe(toCliError))

const remove = Command.make("delete", { ...globalOptions, id: idArg }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const existed = yield* (yield* Scheduler).delete(o.id)
      if (!existed) return yield* operationalError(`schedule ${o.id} does not exist; list them with \`buquet schedule list\``)
      yield* o.json ? printJson({ id: o.id, deleted: true }) : printLine(`Schedule ${o.id} deleted`)
    })
  ).pipe(toCliError))

const trigger = Command.make("trigger", { ...globalOptions, id: idArg }, (o) =>
  withStack(
    o,
    Effect.gen(function*() {
      const task = yield* (yield* Scheduler).triggerNow(o.id)
      yield* o.json ? printJson({ schedule_id: o.id, task_id: task.id }) : printLine(`Schedule ${o.id} triggered: task ${task.id}`)
    })
  ).pipe(toCliError))

const run = Command.make(
  "run",
  {
    ...globalOptions,
    noLeader: Options.boolean("no-leader").pipe(Options.withDescription("fire from this process even if another scheduler leads")),
    interval: optInt("interval", "seconds between re-reads of the schedule list (default 10); firings are on time whatever it is")
  },
  (o) =>
    Effect.gen(function*() {
      if (Option.isSome(o.interval) && (o.interval.value < 1 || o.interval.value > 86_400)) {
        return yield* usageError(`--interval must be from 1 to 86400 seconds, got ${o.interval.value}`)
      }
      const refresh = Option.getOrElse(o.interval, () => 10)
      yield* withStack(
      o,
      Effect.gen(function*() {
        yield* stderrLine(`buquet: scheduler running (re-reads the schedules every ${refresh} s; Ctrl-C to stop)`)
        yield* untilStopRequested(SchedulerLoop.run({
          refreshInterval: Duration.seconds(refresh),
          leader: o.noLeader ? false : undefined,
          onPass: (report) =>
            Effect.forEach(report.fired, (f) =>
              o.json
                ? printLine(JSON.stringify({ schedule_id: f.scheduleId, instant: time(f.instant), task_id: f.taskId, catch_up: f.catchUp }))
                : printLine(`${time(f.instant)}  ${f.scheduleId}  → task ${f.taskId}${f.catchUp ? " (catch-up)" : ""}`), { discard: true })
        }))
      })
    )
    }).pipe(toCliError)
)

/** `buquet schedule …`. */
export const schedule = Command.make("schedule").pipe(
  Command.withDescription("recurring tasks on a cron"),
  Command.withSubcommands([
    create.pipe(Command.withDescription("create a schedule that submits a task on a cron")),
    list.pipe(Command.withDescription("list the schedules and when each fires next")),
    show.pipe(Command.withDescription("show a schedule, its last firing and its next ones")),
    update.pipe(Command.withDescription("change a schedule (only the options given)")),
    toggle("enable").pipe(Command.withDescription("resume a schedule's firings")),
    toggle("disable").pipe(Command.withDescription("stop a schedule's firings, keeping it")),
    remove.pipe(Command.withDescription("delete a schedule")),
    trigger.pipe(Command.withDescription("submit a schedule's task now, outside its cron")),
    run.pipe(Command.withDescription("fire due schedules until SIGINT/SIGTERM (the scheduler, without a worker)"))
  ])
)
