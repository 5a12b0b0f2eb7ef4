/**
 * The reconciliation sweeper of DAG workflow runs: finds runs that nothing will move any more and
 * recovers them by submitting an orchestrator task that reconciles their running steps with the
 * steps' tasks (the reference's sweeper only reported, trap 17). A run is stuck when, and only when:
 *
 * - a running step's (or compensation's) task has ended (completed, failed, cancelled, expired)
 *   or is gone, but the run still shows it running: the step finished while nothing woke the run
 *   (a crash between the step's record and its wake-up, or a lease that ran out on the last attempt);
 * - a step waits for a signal that is already in the inbox (a wake-up lost after the send);
 * - nothing is in flight (no running step or compensation) and the run is neither ended nor paused,
 *   and the wake-up that should move it is not on its way: an orchestrator task was lost between two
 *   writes (e.g. a crash right after `start` created the state, or after a step recorded its outcome
 *   and before it woke the run). The sweeper repeats those wake-ups (`DagOrchestrator.wakeKeys`,
 *   latest first; idempotent, so it gets each task if there is one): a pending one (or one running
 *   for less than `minAge`) means the run is merely waiting for a worker, and is left alone; one it
 *   had to create again recovers the run; if all ended, or one has held its claim for `minAge`
 *   without changing the run (its worker died mid-pass: the queue would only retry it when its
 *   120 s lease ends), a reconciling orchestrator task recovers it.
 *
 * Runs changed less than `minAge` ago are left alone (their own wake-up is probably on its way).
 * Cost per pass: one LIST page of run ids, one GET per run, one GET per running step's task, an
 * idempotent submit per old run with nothing in flight, and one more GET of each run found stuck
 * (it is reported only if its state did not change since it was listed).
 *
 * @since 0.1.0
 * @module
 */
import { DateTime, Duration, Effect, Option } from "effect"
import type { MalformedObject } from "../domain/QueueError.js"
import type { Task } from "../domain/Task.js"
import { isTerminal } from "../domain/TaskStatus.js"
import { orchestrateTaskType } from "../domain/workflow/RunKeys.js"
import type { WorkflowState } from "../domain/workflow/WorkflowState.js"
import { hasPendingSignal, isActiveStatus, listRuns, readRun, wakeRun } from "../protocol/WorkflowRuns.js"
import { wakeKeys } from "./DagOrchestrator.js"
import { Queue } from "../services/Queue.js"

/**
 * Options of {@link sweep}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SweepOptions {
  /** Leave runs changed less than this long ago alone (default 30 s). */
  readonly minAge?: Duration.DurationInput | undefined
  /** Runs read per LIST page (default 500). */
  readonly pageSize?: number | undefined
}

/**
 * A run the sweeper recovered, and why it was stuck.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecoveredRun {
  readonly workflowId: string
  readonly workflow: string
  readonly reason: string
  /** The task whose state showed the run stuck (a step's, a compensation's, or its orchestrator's), if one did. */
  readonly taskId?: string | undefined
}

/**
 * What a sweep did.
 *
 * @since 0.1.0
 * @category models
 */
export interface SweepReport {
  /** Runs read. */
  readonly scanned: number
  /** Active runs changed less than `minAge` ago: not judged this pass (the next one looks again). */
  readonly young: number
  /** Runs found stuck and woken, with why. */
  readonly recovered: ReadonlyArray<RecoveredRun>
  /** State objects that did not decode (named by key). */
  readonly malformed: ReadonlyArray<MalformedObject>
}

interface Stuck {
  readonly reason: string
  readonly taskId: string | undefined
  /** Finding it out already woke it (its lost wake-up was submitted again). */
  readonly woken: boolean
}

/** Why `state` is stuck; none if it is not. */
const stuckReason = (state: WorkflowState, now: DateTime.Utc, minAgeMillis: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const stuck = (reason: string, taskId?: string, woken = false) => Option.some<Stuck>({ reason, taskId, woken })
    let inFlight = false
    for (const [name, s] of Object.entries(state.steps)) {
      if (s.status === "running") {
        inFlight = true
        if (s.waitingSignal !== undefined) {
          if (yield* hasPendingSignal(state, s.waitingSignal)) return stuck(`step "${name}" waits for signal "${s.waitingSignal}", which has arrived`)
          continue
        }
        if (s.taskId === undefined) return stuck(`step "${name}" is running without a task`)
        const task = yield* queue.get(s.taskId)
        if (Option.isNone(task)) return stuck(`step "${name}"'s task ${s.taskId} is gone`, s.taskId)
        if (isTerminal(task.value.status) && !(task.value.status === "completed" && isWaitMarker(task.value.output))) {
          return stuck(`step "${name}"'s task ${s.taskId} is ${task.value.status} but the run still shows it running`, s.taskId)
        }
      }
      const c = s.compensation
      if (c?.status === "running") {
        inFlight = true
        if (c.taskId === undefined) continue
        const task = yield* queue.get(c.taskId)
        if (Option.isNone(task) || isTerminal(task.value.status)) {
          return stuck(`the compensation of step "${name}" (task ${c.taskId}) ended but the run still shows it running`, c.taskId)
        }
      }
    }
    if (inFlight) return Option.none<Stuck>()
    const keys = wakeKeys(state)
    if (keys.length === 0) return stuck(`nothing is in flight and the run is ${state.status}: its orchestrator task was lost`)
    let dead: Task | undefined
    let ended: { readonly key: string; readonly task: Task } | undefined
    for (const key of keys) {
      const before = yield* queue.now
      const wake = yield* wakeRun(state.type, state.id, key)
      if (DateTime.greaterThanOrEqualTo(wake.createdAt, before)) {
        return stuck(`nothing is in flight and the run is ${state.status}: its orchestrator task was lost (wake-up "${key}", submitted again as ${wake.id})`, undefined, true)
      }
      if (wake.status === "pending") return Option.none<Stuck>() // it waits for a worker
      if (wake.status === "running") {
        // a pass takes seconds: one that has held its claim for minAge without changing the run died with its worker
        if (DateTime.toEpochMillis(now) - DateTime.toEpochMillis(wake.updatedAt) < minAgeMillis) return Option.none<Stuck>()
        dead ??= wake
      } else {
        ended ??= { key, task: wake }
      }
    }
    if (dead !== undefined) {
      return stuck(`nothing is in flight and the run is ${state.status}; its orchestrator task ${dead.id} has been running since ${DateTime.formatIso(dead.updatedAt)} without changing it: its worker died`, dead.id)
    }
    return stuck(`nothing is in flight and the run is ${state.status}, but its orchestrator task ${ended!.task.id} (wake-up "${ended!.key}") ended ${ended!.task.status}`, ended!.task.id)
  })

const isWaitMarker = (output: unknown) => typeof output === "object" && output !== null && "waiting_signal" in output

/**
 * One pass over every run: wakes each stuck one with a reconciling orchestrator task and reports
 * which (see the module doc for "stuck"). Safe to run anywhere and at the same time as the
 * orchestrators: the wake-up of an unchanged stuck run is idempotent within a 5-minute window.
 *
 * @since 0.1.0
 * @category sweeper
 */
export const sweep = (options: SweepOptions = {}) =>
  Effect.gen(function*() {
    const queue = yield* Queue
    const minAgeMillis = Duration.toMillis(options.minAge ?? Duration.seconds(30))
    const now = yield* queue.now
    const recovered: Array<RecoveredRun> = []
    const malformed: Array<MalformedObject> = []
    let scanned = 0
    let young = 0
    let cursor: string | undefined = undefined
    do {
      const page: Effect.Effect.Success<ReturnType<typeof listRuns>> = yield* listRuns({ limit: options.pageSize ?? 500, cursor })
      malformed.push(...page.malformed)
      for (const run of page.runs) {
        scanned++
        const state = run.state
        if (!isActiveStatus(state.status)) continue
        if (DateTime.toEpochMillis(now) - DateTime.toEpochMillis(state.updatedAt) < minAgeMillis) {
          young++
          continue
        }
        const stuck = yield* stuckReason(state, now, minAgeMillis)
        if (Option.isNone(stuck)) continue
        // The state was read with the page, the tasks after it: a run that moved meanwhile (a step
        // recorded its outcome, then its task completed) is not stuck. Every writer changes the
        // state before it ends its task, so an unchanged state after an ended task is stuck.
        const fresh = yield* readRun(state.id)
        if (Option.isNone(fresh) || fresh.value.etag !== run.etag) continue
        if (!stuck.value.woken) {
          const window = Math.floor(DateTime.toEpochMillis(now) / 300_000)
          yield* queue.submit(orchestrateTaskType(state.type), { workflow_id: state.id, reconcile: true }, {
            typeCheck: "off",
            maxRetries: 10,
            timeoutSeconds: 120,
            idempotencyKey: `${state.id}:sweep:${DateTime.formatIso(state.updatedAt)}:${window}`
          })
        }
        recovered.push({ workflowId: state.id, workflow: state.type, reason: stuck.value.reason, taskId: stuck.value.taskId })
      }
      cursor = page.cursor
    } while (cursor !== undefined)
    if (recovered.length > 0) {
      yield* Effect.logInfo(`workflow sweeper recovered ${recovered.length} run(s): ${recovered.map((r) => `${r.workflowId} (${r.reason})`).join("; ")}`)
    }
    return { scanned, young, recovered, malformed } satisfies SweepReport
  }).pipe(Effect.withSpan("DagSweeper.sweep"))
