import { describe, expect, it } from "@effect/vitest"
import { compareKeys } from "../../src/domain/KeyOrder.js"

describe("KeyOrder", () => {
  it("compareKeys is code point (UTF-8 byte) order", () => {
    const keys = ["\uff5e", "\u{1f600}", "a", "A", "~", "\u00e9"]
    const sorted = [...keys].sort(compareKeys)
    const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect(sorted).toEqual(expected)
    // UTF-16 order would put the emoji (a surrogate pair) before U+FF5E.
    expect([...keys].sort()).not.toEqual(expected)
  })
})
