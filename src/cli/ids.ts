/**
 * Task ids on the command line: a full UUID or a unique prefix of 6+ characters
 * (`protocol/TaskIdPrefix.ts`). An ambiguous or malformed prefix is bad input (exit 2, listing the
 * candidates); a prefix no task has is "does not exist" (exit 1), as for a full id.
 *
 * @module
 */
import { Effect } from "effect"
import { TaskNotFound } from "../domain/TaskErrors.js"
import { resolveTaskId } from "../protocol/TaskIdPrefix.js"
import { Queue } from "../services/Queue.js"
import { usageError } from "./common.js"

/** The full task id a command-line argument names. */
export const resolveIdArg = Effect.fn("cli.resolveIdArg")(function*(text: string) {
  const queue = yield* Queue
  const resolution = yield* resolveTaskId(text, queue.config.shardPrefixLen)
  switch (resolution._tag) {
    case "Found":
      return resolution.id
    case "NotFound":
      return yield* Effect.fail(TaskNotFound.of(resolution.prefix))
    case "Invalid":
      return yield* Effect.fail(usageError(resolution.message))
    case "Ambiguous":
      return yield* Effect.fail(usageError(
        `the task id prefix "${resolution.prefix}" is ambiguous; it matches ${resolution.candidates.join(", ")}` +
          `${resolution.more ? " and more" : ""}. Give more characters.`
      ))
  }
})
