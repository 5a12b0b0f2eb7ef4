/**
 * Pause switches: one small object, `control/pause.json`, that stops claiming globally or per task
 * type. Workers GET it once per poll (cheap) and ask {@link isPaused} for each candidate; producers
 * may still submit while paused. It is updated by CAS, so two operators never lose each other's switch.
 *
 * @module
 */
import { Schema } from "effect"
import { controlKey } from "./Keys.js"
import { Timestamp } from "./Task.js"

/**
 * Where the pause switches live.
 *
 * @since 0.1.0
 * @category constants
 */
export const pauseKey = controlKey("pause.json")

/**
 * The pause switches. A missing object means nothing is paused.
 *
 * @since 0.1.0
 * @category models
 */
export class PauseState extends Schema.Class<PauseState>("PauseState")({
  /** Every task type is paused. */
  global: Schema.Boolean,
  /** These task types are paused (sorted, no duplicates). */
  taskTypes: Schema.propertySignature(Schema.Array(Schema.String)).pipe(Schema.fromKey("task_types")),
  /** When the switches last changed (server time); absent for the implicit "nothing paused". */
  updatedAt: Schema.optionalWith(Timestamp, { exact: true }).pipe(Schema.fromKey("updated_at"))
}) {
  /** Nothing paused. */
  static readonly none = new PauseState({ global: false, taskTypes: [] })
}

/**
 * Whether tasks of `taskType` must not be claimed under `state`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isPaused = (state: PauseState, taskType: string): boolean =>
  state.global || state.taskTypes.includes(taskType)

/**
 * The switches with `taskType` (or, without one, everything) paused or resumed.
 *
 * @since 0.1.0
 * @category utils
 */
export const withPause = (state: PauseState, paused: boolean, taskType?: string): Omit<PauseState, "updatedAt"> => {
  if (taskType === undefined) return { global: paused, taskTypes: state.taskTypes }
  const set = new Set(state.taskTypes)
  if (paused) set.add(taskType)
  else set.delete(taskType)
  return { global: state.global, taskTypes: [...set].sort() }
}
