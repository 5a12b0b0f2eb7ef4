/**
 * Patterns that may take exponential time on JavaScript's backtracking engine are recognised
 * (issue 15 fix 12: a published `pattern` like `^(a|a)*$` hung submits), and common linear ones
 * are not. The refused ones are the classic shapes; the accepted ones include the safe nestings.
 */
import { describe, expect, it } from "vitest"
import { catastrophicPattern } from "../../src/domain/RegexCost.js"

const refused = [
  "^(a|a)*$",
  "^(a+)+$",
  "(a*)*b",
  "^(a|ab)+$",
  "^(\\d|[0-9])*$",
  "^(\\w+\\s?)*$",
  "^([a-zA-Z0-9]+)*@",
  "(.*a){20}",
  "^((ab)*)+$",
  "^(?:a|a?)+$",
  "^(x+x+)+y$"
]

const accepted = [
  "^[a-z]+$",
  "^(a|b)*$",
  "^\\d{3}-\\d{4}$",
  "^(?:[a-z0-9-]+\\.)+[a-z]{2,}$",
  "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$",
  "^(\\w+\\.)*\\w+$",
  "^[A-Z][a-z]*( [A-Z][a-z]*)*$",
  "^(foo|bar|baz)+$",
  "^\\p{L}+$",
  "^(a{1,3}b)*$",
  "^v\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$"
]

describe("catastrophicPattern", () => {
  for (const p of refused) {
    it(`refuses ${p}`, () => {
      expect(catastrophicPattern(p)).toBeDefined()
    })
  }
  for (const p of accepted) {
    it(`accepts ${p}`, () => {
      expect(catastrophicPattern(p)).toBeUndefined()
    })
  }
  it("accepts what it cannot parse (the RegExp compiler reports it)", () => {
    expect(catastrophicPattern("(a")).toBeUndefined()
  })
})
