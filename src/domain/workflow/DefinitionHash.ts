/**
 * The one definition hash of a DAG workflow, stored in each run's `definition_hash` so an
 * orchestrator running another version of the definition sees the mismatch and pauses the run
 * instead of driving it with the wrong steps.
 *
 * The hash (documented in README "Workflows (preview)"): take the definition in its stored
 * snake_case shape — `{ name, steps: [{ name, depends_on, retries, timeout, on_failure,
 * compensation? }] }` with every default filled in — sort the steps by name and each
 * `depends_on`, serialize as canonical JSON (object keys sorted, no whitespace, UTF-8), and store
 * `"sha256:"` + the first 16 hex characters of its SHA-256. Declaration order therefore never
 * changes the hash; anything that changes how a run behaves does. (The reference's Rust and
 * Python hashes disagree with each other, trap 17; this is neither, so a run started by the
 * reference pauses here with a version mismatch rather than running on a guess.)
 *
 * @since 0.1.0
 * @module
 */
import { createHash } from "node:crypto"
import { Schema } from "effect"
import { canonicalJson } from "../Idempotency.js"
import { StepDefinition, WorkflowDefinition } from "./WorkflowDefinition.js"

const byName = (a: { readonly name: string }, b: { readonly name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/**
 * The canonical JSON text the hash is taken of (see the module doc).
 *
 * @since 0.1.0
 * @category hashing
 */
export const canonicalDefinition = (definition: WorkflowDefinition): string => {
  const normal = new WorkflowDefinition({
    name: definition.name,
    steps: [...definition.steps]
      .sort(byName)
      .map((s) => new StepDefinition({ ...s, dependsOn: [...s.dependsOn].sort() }))
  })
  return canonicalJson(Schema.encodeSync(WorkflowDefinition)(normal))
}

/**
 * `"sha256:"` + the first 16 hex characters of the SHA-256 of {@link canonicalDefinition}.
 *
 * @since 0.1.0
 * @category hashing
 */
export const definitionHash = (definition: WorkflowDefinition): string =>
  `sha256:${createHash("sha256").update(canonicalDefinition(definition), "utf8").digest("hex").slice(0, 16)}`
