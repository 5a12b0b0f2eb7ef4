/**
 * The chaos run (`npm run chaos`): K worker processes on the real server, each on FaultyStorage
 * at 10 % injected failures with the Monitor embedded; N tasks; random SIGKILLs (each victim
 * restarted at once). At the end every task is read back without faults and must be terminal;
 * duplicate executions are counted and each is checked for a cause (the earlier execution's
 * process was killed, or a fault was injected on a request for that task). One verdict line.
 *
 *   npm run chaos                      long form: 5,000 tasks, 4 workers, 20 SIGKILLs
 *   npm run chaos -- --short           CI form: 200 tasks, 3 workers, 3 SIGKILLs (also CHAOS_SHORT=1)
 *   --tasks=N --workers=K --kills=N --fault-rate=0.1 --deadline=SECONDS --json=FILE
 *
 * Exit code 0 on PASS (nothing lost, no unexplained duplicate), 1 otherwise.
 *
 * @module
 */
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, ManagedRuntime, Option } from "effect"
import { isTerminal } from "../src/domain/TaskStatus.js"
import type { TaskStatus } from "../src/domain/TaskStatus.js"
import { Queue } from "../src/services/Queue.js"
import { ensureS3, log, root, round, sleep } from "./lib/env.js"
import type { S3Target } from "./lib/env.js"
import { producerOn, storageLayer, wipe } from "./lib/stack.js"
import type { Backend } from "./lib/stack.js"

export interface ChaosOptions {
  readonly tasks: number
  readonly workers: number
  readonly kills: number
  readonly faultRate: number
  readonly concurrency: number
  readonly timeoutSeconds: number
  readonly checkIntervalSeconds: number
  readonly deadlineSeconds: number
}

export const shortForm: ChaosOptions = {
  tasks: 200,
  workers: 3,
  kills: 3,
  faultRate: 0.1,
  concurrency: 8,
  timeoutSeconds: 5,
  checkIntervalSeconds: 1,
  deadlineSeconds: 200
}

export const longForm: ChaosOptions = {
  tasks: 5000,
  workers: 4,
  kills: 20,
  faultRate: 0.1,
  concurrency: 16,
  timeoutSeconds: 5,
  checkIntervalSeconds: 1,
  deadlineSeconds: 600
}

export interface ChaosResult {
  readonly tasks: number
  readonly workers: number
  readonly kills: number
  readonly faultRate: number
  readonly timeoutSeconds: number
  readonly checkIntervalSeconds: number
  readonly completed: number
  readonly failed: number
  readonly otherTerminal: number
  readonly lost: number
  readonly lostIds: ReadonlyArray<string>
  readonly executions: number
  readonly duplicates: { readonly total: number; readonly afterKill: number; readonly afterFault: number; readonly unexplained: number; readonly unexplainedIds: ReadonlyArray<string> }
  readonly injectedFaults: number
  readonly seconds: number
  readonly verdict: "PASS" | "FAIL"
  readonly verdictLine: string
}

interface LogState {
  readonly starts: Map<string, Array<{ pid: number; attempt: number }>>
  readonly completedIds: Set<string>
  readonly faultsByTask: Map<string, number>
  injected: number
}

const uuidIn = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/

const readLog = (file: string): LogState => {
  const state: LogState = { starts: new Map(), completedIds: new Set(), faultsByTask: new Map(), injected: 0 }
  let text = ""
  try {
    text = readFileSync(file, "utf8")
  } catch {
    return state
  }
  for (const l of text.split("\n")) {
    const [tag, pid, a, b] = l.split(" ")
    if (tag === "S" && a !== undefined) {
      const list = state.starts.get(a) ?? []
      list.push({ pid: Number(pid), attempt: Number(b) })
      state.starts.set(a, list)
    } else if (tag === "C" && a !== undefined) {
      state.completedIds.add(a)
    } else if (tag === "F") {
      state.injected++
      const id = uuidIn.exec(l)?.[0]
      if (id !== undefined) state.faultsByTask.set(id, (state.faultsByTask.get(id) ?? 0) + 1)
    }
  }
  return state
}

export const runChaos = async (target: S3Target, options: ChaosOptions, runId: string): Promise<ChaosResult> => {
  const dir = mkdtempSync(join(os.tmpdir(), "buquet-chaos-"))
  const logFile = join(dir, "events.log")
  writeFileSync(logFile, "")
  const backend: Backend = { kind: "s3", target, keyPrefix: `chaos/${runId}/` }
  const producer = ManagedRuntime.make(producerOn(storageLayer(backend)))
  const killed = new Set<number>()
  const slots: Array<ChildProcess> = []
  const spawnSlot = (i: number): ChildProcess => {
    const child = fork(join(root, "bench/chaos-worker.ts"), [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        CHAOS_CHILD: JSON.stringify({
          ...target,
          keyPrefix: backend.keyPrefix,
          logFile,
          faultRate: options.faultRate,
          seed: `${runId}-${i}-${Date.now()}`,
          concurrency: options.concurrency,
          checkIntervalMillis: options.checkIntervalSeconds * 1000
        })
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    slots[i] = child
    return child
  }
  const started = Date.now()
  const deadline = started + options.deadlineSeconds * 1000
  // stopped from outside: take the workers down too (they also leave when the IPC channel closes)
  const onSignal = () => {
    for (const c of slots) c.kill("SIGKILL")
    process.exit(1)
  }
  process.once("SIGTERM", onSignal)
  process.once("SIGINT", onSignal)
  try {
    for (let i = 0; i < options.workers; i++) spawnSlot(i)
    log(`chaos: ${options.workers} workers, submitting ${options.tasks} tasks`)
    // submitted while the workers run and the kills begin (the workers drain as fast as we submit)
    let ids: Array<string> | undefined
    const submission = producer.runPromise(
      Effect.flatMap(Queue, (q) =>
        q.submitMany(
          Array.from({ length: options.tasks }, (_, i) => ({
            taskType: "chaos",
            input: { i },
            options: { timeoutSeconds: options.timeoutSeconds, maxRetries: 25, retryPolicy: { initialIntervalMs: 200, maxIntervalMs: 2000 } }
          })),
          { concurrency: 16 }
        ))
    ).then((submitted) => {
      const ok = submitted.flatMap((r) => (r._tag === "Submitted" ? [r.task.id] : []))
      if (ok.length !== options.tasks) throw new Error(`only ${ok.length} of ${options.tasks} tasks were submitted`)
      ids = ok
      log(`chaos: all ${ok.length} tasks submitted`)
    })
    let submitError: unknown = undefined
    submission.catch((e: unknown) => (submitError = e))

    // read a task back without faults
    const statusOf = (id: string) =>
      producer.runPromise(
        Effect.flatMap(Queue, (q) => q.get(id)).pipe(
          Effect.map(Option.match({ onNone: (): TaskStatus | "missing" => "missing", onSome: (t): TaskStatus | "missing" => t.status })),
          Effect.retry({ times: 3 })
        )
      )
    const notTerminal = async (candidates: ReadonlyArray<string>, statuses?: Map<string, TaskStatus | "missing">) => {
      const read = await producer.runPromise(
        Effect.forEach(candidates, (id) => Effect.promise(() => statusOf(id).then((s) => [id, s] as const)), { concurrency: 32 })
      )
      for (const [id, s] of read) statuses?.set(id, s)
      return read.filter(([, s]) => s === "missing" || !isTerminal(s)).map(([id]) => id)
    }

    // kills at evenly spaced fractions of the completions, at least 1 s apart
    let kills = 0
    let lastKill = 0
    let state = readLog(logFile)
    let lastProgress = { count: 0, at: Date.now() }
    while (Date.now() < deadline && (ids === undefined || state.completedIds.size < ids.length)) {
      if (submitError !== undefined) throw submitError
      await sleep(250)
      state = readLog(logFile)
      if (state.completedIds.size !== lastProgress.count) lastProgress = { count: state.completedIds.size, at: Date.now() }
      // no completion logged for 2 s: a killed process may have completed tasks without logging
      // them, so read the unlogged ones back
      if (ids !== undefined && kills >= options.kills && Date.now() - lastProgress.at >= 2000) {
        const open = await notTerminal(ids.filter((id) => !state.completedIds.has(id)))
        if (open.length === 0) break
        lastProgress = { count: state.completedIds.size, at: Date.now() }
      }
      const due = Math.floor(((state.completedIds.size / options.tasks) * (options.kills + 1)))
      if (kills < options.kills && kills < due && Date.now() - lastKill >= 1000) {
        const i = Math.floor(Math.random() * options.workers)
        const victim = slots[i]!
        if (victim.pid !== undefined) killed.add(victim.pid)
        victim.kill("SIGKILL")
        kills++
        lastKill = Date.now()
        spawnSlot(i)
        log(`chaos: SIGKILL ${kills}/${options.kills} (pid ${victim.pid}) at ${state.completedIds.size}/${options.tasks} completed; restarted`)
      }
    }
    // the rest of the kills, if the work ran out first (spaced, while recovery still has to work)
    while (kills < options.kills && Date.now() < deadline) {
      const i = Math.floor(Math.random() * options.workers)
      const victim = slots[i]!
      if (victim.pid !== undefined) killed.add(victim.pid)
      victim.kill("SIGKILL")
      kills++
      spawnSlot(i)
      log(`chaos: SIGKILL ${kills}/${options.kills} (after the work ran out)`)
      await sleep(1000)
    }

    await submission
    if (ids === undefined) throw new Error("the submission did not finish")
    const allIds: ReadonlyArray<string> = ids
    // read every task back without faults until all are terminal (or the deadline)
    let pending: ReadonlyArray<string> = allIds
    const statuses = new Map<string, TaskStatus | "missing">()
    for (;;) {
      pending = await notTerminal(pending, statuses)
      if (pending.length === 0 || Date.now() >= deadline) break
      log(`chaos: ${pending.length} task(s) not terminal yet; waiting for recovery`)
      await sleep(3000)
    }
    const seconds = (Date.now() - started) / 1000

    // let the workers go, then count from the final log
    for (const c of slots) c.kill("SIGTERM")
    await sleep(500)
    state = readLog(logFile)
    let total = 0
    let afterKill = 0
    let afterFault = 0
    const unexplainedIds: Array<string> = []
    let executions = 0
    for (const id of ids) {
      const runs = state.starts.get(id) ?? []
      executions += runs.length
      if (runs.length <= 1) continue
      total += runs.length - 1
      const byKill = runs.slice(0, -1).some((r) => killed.has(r.pid))
      if (byKill) afterKill += runs.length - 1
      else if ((state.faultsByTask.get(id) ?? 0) > 0) afterFault += runs.length - 1
      else unexplainedIds.push(id)
    }
    const count = (p: (s: TaskStatus | "missing") => boolean) => [...statuses.values()].filter(p).length
    const completed = count((s) => s === "completed")
    const failed = count((s) => s === "failed")
    const lostIds = pending
    const otherTerminal = ids.length - completed - failed - lostIds.length
    const pass = lostIds.length === 0 && unexplainedIds.length === 0 && kills >= options.kills
    const verdictLine =
      `chaos: ${pass ? "PASS" : "FAIL"} — ${ids.length} tasks, ${options.workers} workers, ${kills} SIGKILLs, ` +
      `${round(options.faultRate * 100)} % injected failures (${state.injected} injected): ${completed} completed, ${failed} failed, ` +
      `${otherTerminal} other terminal, ${lostIds.length} lost; ${total} duplicate execution(s) (${afterKill} after a kill, ` +
      `${afterFault} after an injected fault, ${unexplainedIds.length} unexplained) in ${round(seconds)} s`
    return {
      tasks: ids.length,
      workers: options.workers,
      kills,
      faultRate: options.faultRate,
      timeoutSeconds: options.timeoutSeconds,
      checkIntervalSeconds: options.checkIntervalSeconds,
      completed,
      failed,
      otherTerminal,
      lost: lostIds.length,
      lostIds: lostIds.slice(0, 20),
      executions,
      duplicates: { total, afterKill, afterFault, unexplained: unexplainedIds.length, unexplainedIds: unexplainedIds.slice(0, 20) },
      injectedFaults: state.injected,
      seconds: round(seconds),
      verdict: pass ? "PASS" : "FAIL",
      verdictLine
    }
  } finally {
    process.off("SIGTERM", onSignal)
    process.off("SIGINT", onSignal)
    for (const c of slots) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM")
    await sleep(3000)
    for (const c of slots) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
    await producer.runPromise(wipe).catch(() => 0)
    await producer.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
}

const argValue = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]

const main = async (): Promise<void> => {
  const short = process.argv.includes("--short") || process.env["CHAOS_SHORT"] === "1"
  const base = short ? shortForm : longForm
  const num = (name: string, fallback: number) => {
    const v = argValue(name)
    return v === undefined ? fallback : Number(v)
  }
  const options: ChaosOptions = {
    ...base,
    tasks: num("tasks", base.tasks),
    workers: num("workers", base.workers),
    kills: num("kills", base.kills),
    faultRate: num("fault-rate", base.faultRate),
    deadlineSeconds: num("deadline", base.deadlineSeconds)
  }
  const target = ensureS3()
  const result = await runChaos(target, options, `${Date.now().toString(36)}-${process.pid}`)
  const json = argValue("json")
  if (json !== undefined) writeFileSync(json, JSON.stringify(result, null, 2) + "\n")
  console.log(result.verdictLine)
  process.exit(result.verdict === "PASS" ? 0 : 1)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error("chaos: FAIL —", e)
    process.exit(1)
  })
}
