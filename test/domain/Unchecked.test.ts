/**
 * `uncheckedMaker` gives what `new C(props, true)` gives: same prototype, own keys in the same
 * order, same values (defaults filled where the props lack them or hold `undefined`), Equal.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Equal, FastCheck as fc } from "effect"
import { RetryPolicy } from "../../src/domain/RetryPolicy.js"
import { Task, TaskEvent } from "../../src/domain/Task.js"
import { uncheckedMaker } from "../../src/domain/Unchecked.js"

const same = (made: object, built: object) => {
  expect(Object.getPrototypeOf(made)).toBe(Object.getPrototypeOf(built))
  expect(Reflect.ownKeys(made)).toEqual(Reflect.ownKeys(built))
  for (const key of Reflect.ownKeys(built)) expect((made as Record<PropertyKey, unknown>)[key]).toBe((built as Record<PropertyKey, unknown>)[key])
  expect(Equal.equals(made, built)).toBe(true)
}

describe("uncheckedMaker", () => {
  const makeTask = uncheckedMaker(Task)
  const makeEvent = uncheckedMaker(TaskEvent)
  const makePolicy = uncheckedMaker(RetryPolicy)

  it.prop("a task from a task's fields", [Arbitrary.make(Task)], ([task]) => {
    same(makeTask({ ...task }), new Task({ ...task }, true))
  }, { fastCheck: { numRuns: 25 } })

  it.prop("a task whose defaulted fields are absent or undefined", [Arbitrary.make(Task), fc.constantFrom("absent", "undefined")], ([task, how]) => {
    const props: Record<string, unknown> = { ...task }
    for (const key of ["output", "rescheduleCount", "cancelRequested"]) {
      if (how === "absent") delete props[key]
      else props[key] = undefined
    }
    const fields = props as unknown as ConstructorParameters<typeof Task>[0]
    const made = makeTask(fields)
    same(made, new Task(fields, true))
    expect(made.output).toBe(null)
    expect(made.rescheduleCount).toBe(0)
    expect(made.cancelRequested).toBe(false)
  }, { fastCheck: { numRuns: 25 } })

  it.prop("task events and retry policies", [Arbitrary.make(TaskEvent), Arbitrary.make(RetryPolicy)], ([event, policy]) => {
    same(makeEvent({ ...event }), new TaskEvent({ ...event }, true))
    same(makePolicy({ ...policy }), new RetryPolicy({ ...policy }, true))
  }, { fastCheck: { numRuns: 25 } })
})
