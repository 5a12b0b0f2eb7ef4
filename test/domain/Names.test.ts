/**
 * The names that end up inside object keys: hostile input is refused with a message that says
 * what is allowed; ordinary names pass.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, ParseResult, Schema } from "effect"
import { IdempotencyScope, ScheduleId, TaskId, TaskTypeName, WorkerId } from "../../src/domain/Names.js"

const names = { TaskTypeName, ScheduleId, WorkerId, IdempotencyScope } as const

/** The decode error's message, or undefined if the name is accepted. */
const refusal = (schema: Schema.Schema<string>, input: unknown): string | undefined =>
  Either.match(Schema.decodeUnknownEither(schema)(input), {
    onLeft: (error) => ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => i.message).join("; "),
    onRight: () => undefined
  })

const hostile: ReadonlyArray<readonly [input: string, says: RegExp]> = [
  ["", /must not be empty/],
  ["../x", /letters, digits/],
  ["..", /letters, digits/],
  ["a/b", /slashes/],
  ["a\\b", /letters, digits/],
  ["/abs", /letters, digits/],
  ["a..b", /must not contain "\.\."/],
  ["x\u0000y", /control characters/],
  ["tab\there", /control characters/],
  ["new\nline", /control characters/],
  ["del\u007f", /letters, digits/],
  ["with space", /spaces/],
  [".hidden", /must not start with/],
  ["-flag", /must not start with/],
  ["café", /letters, digits/],
  ["x".repeat(2048), /at most 200 characters/],
  ["x".repeat(201), /at most 200 characters/]
]

describe("names in keys", () => {
  for (const [label, schema] of Object.entries(names)) {
    describe(label, () => {
      for (const [input, says] of hostile) {
        it(`refuses ${JSON.stringify(input.length > 20 ? `${input.slice(0, 8)}…(${input.length})` : input)}`, () => {
          const message = refusal(schema, input)
          expect(message).toBeDefined()
          expect(message).toMatch(says)
        })
      }

      it("refuses non-strings", () => {
        for (const bad of [null, undefined, 42, {}, ["a"]]) expect(refusal(schema, bad)).toBeDefined()
      })

      it("accepts ordinary names", () => {
        for (
          const ok of ["send_email", "reports.daily", "worker-3fa9c1d2", "tenant:acme", "a@b", "Q", "_private", "x".repeat(200), "v1.2.3"]
        ) expect(refusal(schema, ok), ok).toBeUndefined()
      })

      it.prop(
        "accepts every name of allowed characters (not starting with . : @ -, no \"..\", 1–200 long)",
        [fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,199}$/)],
        ([name]) => {
          fc.pre(!name.includes(".."))
          expect(refusal(schema, name)).toBeUndefined()
        }
      )

      it.prop(
        "refuses every name with a slash, a backslash or a control character",
        [fc.string({ maxLength: 30 }), fc.constantFrom("/", "\\", "\u0000", "\n", "\r", "\u001b", " "), fc.string({ maxLength: 30 })],
        ([before, bad, after]) => {
          expect(refusal(schema, `${before}${bad}${after}`)).toBeDefined()
        }
      )
    })
  }

  describe("TaskId", () => {
    it("accepts a lower-case UUID and refuses anything else, saying what a task id is", () => {
      expect(refusal(TaskId, "6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70")).toBeUndefined()
      for (const bad of ["6F1C1C2E-8A4B-4C1E-9F0A-2B3C4D5E6F70", "../../etc/passwd", "", "6f1c1c2e8a4b4c1e9f0a2b3c4d5e6f70", "6f1c1c2e-8a4b-4c1e-9f0a-2b3c4d5e6f70/x"]) {
        expect(refusal(TaskId, bad)).toMatch(/lower-case UUID/)
      }
    })

    it.prop("accepts every lower-case UUID", [fc.uuid().map((s) => s.toLowerCase())], ([id]) => {
      expect(refusal(TaskId, id)).toBeUndefined()
    })
  })
})
