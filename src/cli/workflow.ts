/**
 * `buquet workflow list|show|signal|cancel|pause|resume|sweep`: the DAG workflow runs in the bucket
 * (`workflow/{id}/state.json`). Reads go through the validated reader of
 * protocol/WorkflowRunListing.ts (a run whose state cannot be read is named on stderr and the rest
 * of the listing goes on); the intents through the Effect API (`DagWorkflow`).
 *
 * @module
 */
import { Args, Command, Options } from "@effect/cli"
import { DateTime, Duration, Effect, Either, Option, Schema } from "effect"
import { describeParseError } from "../domain/Codec.js"
import { WorkflowRunId } from "../domain/workflow/RunKeys.js"
import { describeHold, runProgress, runSummaryJson, signalConsumed, stepRowJson, stepRows, stepsHeldByPause } from "../domain/workflow/RunView.js"
import { WorkflowState, WorkflowStatus } from "../domain/workflow/WorkflowState.js"
import { listRuns, listSignals, readRun } from "../protocol/WorkflowRunListing.js"
import type { SignalEntry } from "../protocol/WorkflowRunListing.js"
import * as DagWorkflow from "../programs/DagWorkflow.js"
import { Queue } from "../services/Queue.js"
import { ServerClock } from "../services/ServerClock.js"
import { globalOptions, operationalError, parseJsonArg, printJson, printLine, reportSkipped, stderrLine, toCliError, usageError, withStack } from "./common.js"
import { table, time } from "./format.js"

const statuses = WorkflowStatus.literals

const runIdArg = Args.text({ name: "run-id" }).pipe(Args.withDescription("the workflow run's id"))

/** The run id argument, checked: not an id's form is bad input (exit 2). */
export const checkRunId = (text: string): Effect.Effect<string, ReturnType<typeof usageError>> =>
  Either.match(Schema.decodeUnknownEither(WorkflowRunId)(text), {
    onLeft: (e) => Effect.fail(usageError(`"${text.slice(0, 80)}" is not a workflow run id: ${describeParseError(e)}`)),
    onRight: Effect.succeed
  })

/** `run X does not exist` (exit 1), with where to look. */
export const unknownRun = (id: string) =>
  operationalError(`workflow run ${id} does not exist; list the runs with \`buquet workflow list\``)

const encodeState = Schema.encodeSync(WorkflowState)

/** "12 s", "5 min", "3 h", "2 d": how long ago `t` was. */
const age = (t: DateTime.Utc, now: DateTime.Utc): string => {
  const s = Math.max(0, Math.round((DateTime.toEpochMillis(now) - DateTime.toEpochMillis(t)) / 1000))
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} d`
}

const list = Command.make(
  "list",
  {
    ...globalOptions,
    status: Options.text("status").pipe(
      Options.withDescription(`only runs in this status: ${statuses.join(", ")}`),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(Options.withDescription("read at most this many runs, in id order (default 1000)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const status = Option.getOrUndefined(o.status)
      if (status !== undefined && !(statuses as ReadonlyArray<string>).includes(status)) {
        return yield* usageError(`--status: "${status}" is not a workflow status; use one of ${statuses.join(", ")}`)
      }
      const limit = Option.getOrUndefined(o.limit)
      if (limit !== undefined && (limit < 1 || limit > 100_000)) return yield* usageError(`--limit must be from 1 to 100000, got ${limit}`)
      yield* withStack(
        o,
        Effect.gen(function*() {
          const listing = yield* listRuns({ limit })
          yield* reportSkipped(listing.malformed)
          if (listing.truncated) yield* stderrLine(`buquet: only the first ${limit ?? 1000} runs were read; raise --limit to see more`)
          const now = yield* (yield* ServerClock).now
          const runs = listing.runs.map((r) => r.state).filter((s) => status === undefined || s.status === status)
          if (o.json) return yield* printJson(runs.map(runSummaryJson))
          if (runs.length === 0) return yield* printLine(status === undefined ? "no workflow runs" : `no workflow runs with status ${status}`)
          yield* printLine(table(
            ["ID", "WORKFLOW", "STATUS", "STEPS DONE", "AGE", "UPDATED"],
            runs.map((s) => {
              const p = runProgress(s)
              return [s.id, s.type, s.status, `${p.completed}/${p.total}`, age(s.createdAt, now), time(s.updatedAt)]
            })
          ))
        })
      )
    }).pipe(toCliError)
)

/** A stored error on one table line: whitespace collapsed, cut at 160 characters. */
const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 160 ? `${flat.slice(0, 159)}…` : flat
}

const signalJson = (s: SignalEntry) => ({ name: s.name, id: s.signalId, sent_at: s.ts, key: s.key })

const show = Command.make("show", { ...globalOptions, id: runIdArg }, (o) =>
  Effect.gen(function*() {
    const id = yield* checkRunId(o.id)
    yield* withStack(
      o,
      Effect.gen(function*() {
        const found = yield* readRun(id)
        if (Option.isNone(found)) return yield* unknownRun(id)
        const state = found.value.state
        const inbox = yield* listSignals(id)
        yield* reportSkipped(inbox.malformed)
        const consumed = (s: SignalEntry) => signalConsumed(state, s.name, s.suffix)
        const pending = inbox.signals.filter((s) => !consumed(s))
        const done = inbox.signals.filter(consumed)
        const rows = stepRows(state)
        const progress = runProgress(state)
        const pause = yield* (yield* Queue).pauseState
        const held = stepsHeldByPause(state, pause)
        if (o.json) {
          return yield* printJson({
            state: encodeState(state),
            progress,
            held_by_pause: held.map((h) => ({ step: h.step, task_type: h.taskType })),
            steps: rows.map(stepRowJson),
            signals: { pending: pending.map(signalJson), consumed: done.map(signalJson) }
          })
        }
        const e = state.error
        yield* printLine([
          `id          ${state.id}`,
          `workflow    ${state.type}  (${state.definitionHash})`,
          `status      ${state.status}`,
          `steps done  ${progress.completed}/${progress.total}`,
          `created     ${time(state.createdAt)}`,
          `updated     ${time(state.updatedAt)}`,
          ...(e === undefined ? [] : [`error       ${e.type}: ${e.message}${e.step === undefined ? "" : ` (step ${e.step})`}`]),
          ...held.map((h) =>
            `held        ${describeHold(h, pause)}`),
          "",
          rows.length === 0 ? "no steps started yet" : table(
            ["STEP", "STATUS", "ATTEMPT", "TASK", "ERROR"],
            rows.map((r) => [
              r.name,
              r.status + (r.compensation === null ? "" : ` (compensation ${r.compensation})`),
              String(r.attempt),
              r.taskId ?? "-",
              r.error === null ? "-" : oneLine(r.error)
            ])
          ),
          "",
          `signals     ${pending.length} pending, ${done.length} consumed`,
          ...[...pending.map((s) => ["pending", s] as const), ...done.map((s) => ["consumed", s] as const)].map(([what, s]) =>
            `  ${what.padEnd(8)}  ${s.name}  ${s.ts}  ${s.signalId}`)
        ].join("\n"))
      })
    )
  }).pipe(toCliError))

const reasonOption = Options.text("reason").pipe(Options.withAlias("r"), Options.withDescription("why (kept as the run's error)"), Options.optional)

/** An intent on a run: a run that does not exist is said as `show` says it (exit 1). */
const onRun = <A, E, R>(id: string, intent: Effect.Effect<A, E, R>) =>
  Effect.catchIf(intent, (e) => typeof e === "object" && e !== null && "_tag" in e && e._tag === "WorkflowRunNotFound", () => unknownRun(id))

/** A run after an intent: its summary (`--json`) or one line. */
const intentDone = (json: boolean, verb: string, state: WorkflowState) =>
  json ? printJson(runSummaryJson(state)) : printLine(`Workflow run ${state.id} ${verb} (status ${state.status})`)

const signal = Command.make(
  "signal",
  {
    ...globalOptions,
    id: runIdArg,
    name: Args.text({ name: "signal-name" }).pipe(Args.withDescription("the signal's name: letters, digits, _ . -")),
    payload: Options.text("payload").pipe(Options.withAlias("p"), Options.withDescription("the signal's payload as JSON (default null)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const id = yield* checkRunId(o.id)
      const payload = Option.isSome(o.payload) ? yield* parseJsonArg("--payload", o.payload.value) : null
      yield* withStack(
        o,
        Effect.gen(function*() {
          const sent = yield* onRun(id, DagWorkflow.signal(id, o.name, payload))
          if (o.json) return yield* printJson({ run_id: id, name: sent.name, id: sent.id, created_at: time(sent.createdAt) })
          yield* printLine(`Signal ${sent.name} sent to workflow run ${id} (signal ${sent.id})`)
        })
      )
    }).pipe(toCliError)
)

const intent = (name: "cancel" | "pause", verb: string) =>
  Command.make(name, { ...globalOptions, id: runIdArg, reason: reasonOption }, (o) =>
    Effect.gen(function*() {
      const id = yield* checkRunId(o.id)
      const reason = Option.getOrUndefined(o.reason)
      yield* withStack(
        o,
        Effect.flatMap(onRun(id, name === "cancel" ? DagWorkflow.cancel(id, reason) : DagWorkflow.pause(id, reason)), (state) => intentDone(o.json, verb, state))
      )
    }).pipe(toCliError))

const resume = Command.make("resume", { ...globalOptions, id: runIdArg }, (o) =>
  Effect.gen(function*() {
    const id = yield* checkRunId(o.id)
    yield* withStack(o, Effect.flatMap(onRun(id, DagWorkflow.resume(id)), (state) => intentDone(o.json, "resumed", state)))
  }).pipe(toCliError))

const sweep = Command.make(
  "sweep",
  {
    ...globalOptions,
    minAge: Options.integer("min-age").pipe(Options.withDescription("leave runs changed less than this many seconds ago alone (default 30)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const minAge = Option.getOrUndefined(o.minAge)
      if (minAge !== undefined && (minAge < 0 || minAge > 86_400)) return yield* usageError(`--min-age must be from 0 to 86400 seconds, got ${minAge}`)
      yield* withStack(
        o,
        Effect.gen(function*() {
          const report = yield* DagWorkflow.sweep(minAge === undefined ? {} : { minAge: Duration.seconds(minAge) })
          yield* reportSkipped(report.malformed)
          if (o.json) {
            return yield* printJson({
              scanned: report.scanned,
              young: report.young,
              recovered: report.recovered.map((r) => ({ run_id: r.workflowId, workflow: r.workflow, reason: r.reason }))
            })
          }
          yield* printLine([
            `Scanned ${report.scanned} run(s); recovered ${report.recovered.length}` +
              (report.young === 0 ? "" : `; ${report.young} active run(s) changed less than ${minAge ?? 30} s ago, left for the next pass`),
            ...report.recovered.map((r) => `  ${r.workflowId}  ${r.workflow}: ${r.reason}`)
          ].join("\n"))
        })
      )
    }).pipe(toCliError)
)

/** `buquet workflow …`. */
export const workflow = Command.make("workflow").pipe(
  Command.withDescription("DAG workflow runs (workflow/{id}/): list, show, signal, cancel, pause, resume, sweep"),
  Command.withSubcommands([
    list.pipe(Command.withDescription("list the workflow runs with their status and progress")),
    show.pipe(Command.withDescription("show a run: its state, each step and its signals")),
    signal.pipe(Command.withDescription("send a signal to a run; a step waiting for it resumes")),
    intent("cancel", "cancelled").pipe(Command.withDescription("cancel a run and interrupt its running step tasks")),
    intent("pause", "paused").pipe(Command.withDescription("pause a run: nothing new is scheduled until resume")),
    resume.pipe(Command.withDescription("resume a paused run from the step it failed at")),
    sweep.pipe(Command.withDescription("one reconciliation pass: wake stuck runs and say which"))
  ])
)
