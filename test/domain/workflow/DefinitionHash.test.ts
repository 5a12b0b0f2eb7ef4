/**
 * The one definition hash (reference §6.5 "workflow/types": determinism and order independence),
 * pinned so a change to its canonical form cannot slip through: a stored run's hash would stop
 * matching its own definition and every run would pause with a version mismatch.
 */
import { describe, expect, it } from "@effect/vitest"
import { canonicalDefinition, definitionHash } from "../../../src/domain/workflow/DefinitionHash.js"
import { StepDefinition, WorkflowDefinition } from "../../../src/domain/workflow/WorkflowDefinition.js"

const orders = (steps: ReadonlyArray<ConstructorParameters<typeof StepDefinition>[0]>) =>
  new WorkflowDefinition({ name: "orders", steps: steps.map((s) => new StepDefinition(s)) })

const a = { name: "reserve", compensation: "release", onFailure: "compensate" as const }
const b = { name: "charge", dependsOn: ["reserve", "check"], retries: 5, timeoutSeconds: 60 }
const c = { name: "check" }

describe("definitionHash", () => {
  it("hashes the canonical JSON: steps by name, keys sorted, depends_on sorted, no whitespace", () => {
    expect(canonicalDefinition(orders([a, b, c]))).toBe(
      `{"name":"orders","steps":[` +
        `{"depends_on":["check","reserve"],"name":"charge","on_failure":"fail_workflow","retries":5,"timeout":60},` +
        `{"depends_on":[],"name":"check","on_failure":"fail_workflow","retries":3,"timeout":300},` +
        `{"compensation":"release","depends_on":[],"name":"reserve","on_failure":"compensate","retries":3,"timeout":300}]}`
    )
  })
  it("is pinned: sha256: and the first 16 hex characters of that text's SHA-256", () => {
    // computed outside this code: printf "%s" "<the canonical text above>" | sha256sum | cut -c1-16
    expect(definitionHash(orders([a, b, c]))).toBe("sha256:469c7173e2b1bfae")
  })
  it("does not depend on the order steps or dependencies were declared in", () => {
    const h = definitionHash(orders([a, b, c]))
    expect(definitionHash(orders([c, b, a]))).toBe(h)
    expect(definitionHash(orders([a, { ...b, dependsOn: ["check", "reserve"] }, c]))).toBe(h)
  })
  it("changes with anything that changes how a run behaves", () => {
    const h = definitionHash(orders([a, b, c]))
    const variants = [
      orders([a, { ...b, retries: 4 }, c]),
      orders([a, { ...b, timeoutSeconds: 61 }, c]),
      orders([a, { ...b, onFailure: "continue" }, c]),
      orders([a, { ...b, dependsOn: ["reserve"] }, c]),
      orders([{ ...a, compensation: "undo" }, b, c]),
      orders([a, b]),
      new WorkflowDefinition({ name: "orders2", steps: orders([a, b, c]).steps })
    ]
    const hashes = new Set(variants.map(definitionHash))
    expect(hashes.size).toBe(variants.length)
    expect(hashes.has(h)).toBe(false)
    for (const v of hashes) expect(v).toMatch(/^sha256:[0-9a-f]{16}$/)
  })
})
