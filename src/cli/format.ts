/**
 * Human output: tables and task summaries. `--json` output is the stored (snake_case) form.
 *
 * @module
 */
import { DateTime, Schema } from "effect"
import { lastErrorStack, Task } from "../domain/Task.js"
import type { TaskEvent } from "../domain/Task.js"
import { isWaitingParent } from "../domain/Flows.js"

/**
 * Characters that must never reach a terminal raw from stored data: C0 controls but tab and line
 * feed (ESC starts terminal commands, CR and BS overwrite text, BEL rings), DEL, C1 controls
 * (0x9B is a one-byte CSI on some terminals), and the bidirectional and invisible format characters
 * that reorder or hide text (U+061C, U+200B–U+200F, U+202A–U+202E, U+2028/2029, U+2066–U+2069,
 * U+FEFF).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const unsafeForTerminal = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g

/**
 * Makes text safe to print on a terminal: every character of {@link unsafeForTerminal} becomes a
 * visible `\uXXXX`. Every human-readable line the CLI prints goes through it; a JSON document stays
 * valid JSON (inside strings `\uXXXX` is the same character, and JSON has none of them elsewhere).
 */
export const terminalSafe = (text: string): string =>
  text.replace(unsafeForTerminal, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** A task in its stored JSON form (what `--json` prints). */
export const taskJson = (task: Task): unknown => Schema.encodeSync(Task)(task)

/** A left-aligned table with a header row. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(header), line(widths.map((w) => "─".repeat(w))), ...rows.map(line)].join("\n")
}

/** An instant for humans: RFC 3339 to the second. */
export const time = (dt: DateTime.DateTime | null | undefined): string =>
  dt === null || dt === undefined ? "-" : DateTime.formatIso(DateTime.toUtc(dt)).replace(/\.\d+Z$/, "Z")

const compact = (value: unknown, max = 200): string => {
  const text = JSON.stringify(value) ?? "null"
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** A task as `key: value` lines, for `buquet get`. */
export const describeTask = (task: Task, input: unknown, output: unknown, children?: ReadonlyArray<ChildState>): string => {
  const stackOfTask = lastErrorStack(task)
  const waiting = isWaitingParent(task)
  const ended = (task.flow?.children ?? []).filter((c) => c.outcome !== undefined).length
  const rows: Array<[string, string]> = [
    ["id", task.id],
    ["type", task.taskType],
    [
      "status",
      task.status + (task.cancelRequested && task.status === "running" ? " (cancel requested)" : "") +
        (waiting ? ` (waiting for its children: ${ended} of ${task.flow!.children.length} ended)` : "")
    ],
    ["shard", task.shard],
    ["attempt", `${task.attempt} (retries ${task.retryCount}/${task.maxRetries}, reschedules ${task.rescheduleCount}${task.maxReschedules === undefined ? "" : `/${task.maxReschedules}`})`],
    ["priority", String(task.priority ?? 0)],
    ["available at", waiting ? "when its children have ended" : time(task.availableAt)],
    ["lease expires", time(task.leaseExpiresAt)],
    ["expires at", time(task.expiresAt)],
    ["worker", task.workerId ?? "-"],
    ["input", compact(input)],
    ["output", compact(output)],
    ["last error", task.lastError ?? "-"],
    ...(stackOfTask === undefined ? [] : [["error stack", indentStack(stackOfTask)] as [string, string]]),
    ["created", time(task.createdAt)],
    ["updated", time(task.updatedAt)],
    ["completed", time(task.completedAt)]
  ]
  if (task.progress !== undefined) rows.splice(11, 0, ["progress", compact(task.progress)])
  if (task.parentId !== undefined) rows.splice(2, 0, ["parent", task.parentId])
  if (task.followUps !== undefined) {
    const created = task.followUps.materializedAt === undefined
      ? "not created yet (lease recovery creates them)"
      : `created ${time(task.followUps.materializedAt)}`
    rows.push([`follow-ups (${task.followUps.tasks.length})`, `${created}
${followUpLines(task)}`])
  }
  if (task.flow !== undefined) {
    const states = children ?? task.flow.children.map((c) => ({ id: c.id, taskType: c.taskType, status: c.outcome ?? "?" }))
    const note = task.flow.outbox !== undefined ? " — not all created yet (lease recovery creates them)" : ""
    rows.push([`children (${task.flow.children.length})`, `${ended} ended${note}
${states.map((c) => `    ${c.id}  ${c.taskType}  ${c.status}`).join("\n")}`])
  }
  const w = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")
}

/** A flow's child as `buquet get` of its parent shows it: its current status (`missing` once deleted). */
export interface ChildState {
  readonly id: string
  readonly taskType: string
  readonly status: string
}

/** One indented `id  type` line per follow-up, under its row. */
const followUpLines = (task: Task): string =>
  (task.followUps?.tasks ?? []).map((f) => `    ${f.id}  ${f.taskType}`).join("\n")

/** A stack trace's lines after the first, indented under a row or an event. */
const indentStack = (stack: string, indent = "    "): string => stack.split("\n").map((l, i) => (i === 0 ? l : `${indent}${l.trim()}`)).join("\n")

/** A transition for humans: `at  from → to  (attempt n, worker w): error`, then the error's stack trace. */
export const describeEvent = (e: TaskEvent): string =>
  `${time(e.at)}  ${e.from ?? "(new)"} → ${e.to}  attempt ${e.attempt}${e.workerId === undefined ? "" : `  worker ${e.workerId}`}${e.error === undefined ? "" : `  error: ${e.error}`}` +
  (e.stack === undefined ? "" : `\n    ${indentStack(e.stack)}`)

/** A JSON form of a transition. */
export const eventJson = (e: TaskEvent): unknown => ({
  at: time(e.at),
  from: e.from,
  to: e.to,
  attempt: e.attempt,
  worker_id: e.workerId ?? null,
  error: e.error ?? null,
  stack: e.stack ?? null
})
