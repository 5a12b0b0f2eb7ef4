/**
 * When an offloaded payload (`payloads/{id}/input.json`, `output-{leaseId}.json`, or the older
 * `output.json`) is an orphan the sweeper may
 * delete. Payloads are written before the task that references them (a submit's input) or before
 * the settle that does (a worker's output), so a crash, a lost lease or a lost idempotency race
 * leaves payloads nothing references. The rule:
 *
 * - younger than the grace: keep (an in-flight submit's task may not exist yet);
 * - its task does not exist: collect;
 * - its task is not terminal: keep (a running attempt may still settle with its output, and a
 *   pending one may be claimed and write it again);
 * - its task is terminal and references it (`input_ref` / `output_ref`): keep; otherwise collect.
 *
 * The DELETE that follows is unconditional (S3 ignores If-Match on DELETE) and may land late, so
 * it must never hit a key a later run writes: each attempt offloads its output to its own key
 * (`output-{leaseId}.json`), and an attempt can no longer settle with it once its task was seen
 * terminal without it. A legacy `output.json` is never written again by this queue.
 *
 * @module
 */
import { Duration } from "effect"
import type { Task } from "./Task.js"
import { isTerminal } from "./TaskStatus.js"

/**
 * Default age below which a payload is never collected: one hour, far beyond a submit's payload →
 * task gap (bounded by request timeouts).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPayloadGrace: Duration.Duration = Duration.hours(1)

/**
 * The task id and kind named by a payload key, or undefined for anything else under `payloads/`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parsePayloadKey = (key: string): { readonly taskId: string; readonly which: "input" | "output" } | undefined => {
  const m = /^payloads\/([0-9a-f-]{36})\/(input|output)(-[0-9a-f-]{36})?\.json$/.exec(key)
  if (m === null || (m[2] === "input" && m[3] !== undefined)) return undefined
  return { taskId: m[1]!, which: m[2] as "input" | "output" }
}

/**
 * Whether the payload at `key`, last written at `lastModifiedMillis`, may be deleted at `nowMillis`
 * given its task as read (undefined: the task does not exist).
 *
 * @since 0.1.0
 * @category rules
 */
export const isOrphanPayload = (
  payload: { readonly key: string; readonly lastModifiedMillis: number },
  task: Task | undefined,
  nowMillis: number,
  graceMillis: number
): boolean => {
  if (nowMillis - payload.lastModifiedMillis < graceMillis) return false
  if (task === undefined) return true
  if (!isTerminal(task.status)) return false
  return task.inputRef !== payload.key && task.outputRef !== payload.key
}
