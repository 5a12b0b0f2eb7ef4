/**
 * Where a DAG workflow run lives in the bucket, the reference's layout (reference §2.1):
 *
 * ```
 * workflow/{id}/state.json                        WorkflowState (create If-None-Match, then CAS If-Match)
 * workflow/{id}/steps/{step}.json                 a step's result (write-once, If-None-Match)
 * workflow/{id}/signals/{name}/{ts}_{uuid}.json   one signal (append-only; keys sort by time)
 * ```
 *
 * Every name in a key is a checked {@link WorkflowRunId} or `WorkflowName`, so a key built here
 * never escapes its run's prefix; the parsers recover the names a stored body is checked against.
 *
 * @since 0.1.0
 * @module
 */
import { Schema } from "effect"

/**
 * A run id: 1–200 letters, digits, `_ . : -` (not starting with `. : -`), no `..`.
 *
 * @since 0.1.0
 * @category models
 */
export const WorkflowRunId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$/, {
    message: () => "a workflow run id has 1–200 letters, digits, _ . : - (not starting with . : or -); no slashes or spaces"
  }),
  Schema.filter((s) => !s.includes("..") || "a workflow run id must not contain \"..\"")
)

/** The prefix of every workflow run. */
export const workflowRunsPrefix = "workflow/"

/** The prefix of one run's objects. */
export const runPrefix = (id: string): string => `${workflowRunsPrefix}${id}/`

/** `workflow/{id}/state.json`. */
export const workflowStateKey = (id: string): string => `${runPrefix(id)}state.json`

/** `workflow/{id}/steps/{step}.json`. */
export const stepResultKey = (id: string, step: string): string => `${runPrefix(id)}steps/${step}.json`

/** `workflow/{id}/signals/{name}/`: one signal name's inbox (LIST start-after the cursor). */
export const signalPrefix = (id: string, name: string): string => `${runPrefix(id)}signals/${name}/`

/** `workflow/{id}/signals/{name}/{ts}_{uuid}.json`; `ts` sorts by time (e.g. RFC 3339 UTC). */
export const signalKey = (id: string, name: string, ts: string, signalId: string): string =>
  `${signalPrefix(id, name)}${ts}_${signalId}.json`

const segment = "[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}"
const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

/** The run id a state key names, or undefined for any other key. */
export const parseWorkflowStateKey = (key: string): string | undefined => {
  const m = new RegExp(`^workflow/(${segment})/state\\.json$`).exec(key)
  return m === null || m[1]!.includes("..") ? undefined : m[1]
}

/** The run, signal name, timestamp and signal id a signal key names, or undefined for any other key. */
export const parseSignalKey = (
  key: string
): { readonly workflowId: string; readonly name: string; readonly ts: string; readonly signalId: string } | undefined => {
  const m = new RegExp(`^workflow/(${segment})/signals/(${segment})/([^/]+)_(${uuid})\\.json$`).exec(key)
  if (m === null || m[1]!.includes("..") || m[2]!.includes("..")) return undefined
  return { workflowId: m[1]!, name: m[2]!, ts: m[3]!, signalId: m[4]! }
}

/**
 * The reserved task type of a run's orchestrator, one per workflow name (the reference's single
 * `workflow.orchestrate` made every worker claim every workflow's runs, trap 17).
 */
export const orchestrateTaskType = (workflow: string): string => `workflow.orchestrate:${workflow}`

/** The reserved task type of one step's (or compensation's) handler: the reference's `workflow.step:{wf}:{step}`. */
export const stepTaskType = (workflow: string, step: string): string => `workflow.step:${workflow}:${step}`

/** The suffix of a signal key after its name's prefix (`{ts}_{uuid}.json`): what a cursor stores. */
export const signalCursorOf = (key: string, prefix: string): string => key.slice(prefix.length)
