/**
 * A handlers module for the command line:
 *
 *   buquet worker --handlers examples/handlers.ts --storage file://.buquet-examples
 *
 * The default export maps task types to Promise handlers `(input, ctx) => output`. Throw
 * RetryableError (or anything) to retry with backoff, PermanentError to fail now, RescheduleError
 * to run again later without using a retry. In your own project, import from "buquet/promise".
 *
 * @module
 */
import type { HandlerMap } from "../src/promise.js"
import { PermanentError, RetryableError } from "../src/promise.js"

const handlers: HandlerMap = {
  /** Pretends to send an e-mail; refuses malformed addresses for good. */
  send_email: async (input, ctx) => {
    const { to } = input as { to?: unknown }
    if (typeof to !== "string" || !to.includes("@")) throw new PermanentError(`${String(to)} is not an e-mail address`)
    if (ctx.signal.aborted) throw new RetryableError("stopping before sending")
    return { sent: true, to }
  },
  /** Adds two numbers. */
  add: async (input) => {
    const { a, b } = input as { a: number; b: number }
    return { sum: a + b }
  }
}

export default handlers
