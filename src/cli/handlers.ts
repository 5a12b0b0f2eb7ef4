/**
 * Loading a handlers module for `buquet worker --handlers FILE` (design.md §7): a `.js`/`.mjs`
 * module is imported as is; a `.ts`/`.mts` one through tsx's loader (registered once, and only when
 * the CLI itself does not already run from its TypeScript sources). The default export is read with
 * `handlersFromModule`: an object of Promise handlers, or a list of `Worker.handler` definitions.
 *
 * @module
 */
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import type { HandlerDefinition } from "../programs/worker/Handler.js"
import { definitionsFromModule } from "../promise/handlers.js"
import { operationalError, usageError } from "./common.js"
import type { CliError } from "./common.js"

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? ""

/** Whether this CLI runs from its `.ts` sources (then tsx's loader is already registered). */
const runsFromSources = import.meta.url.endsWith(".ts")

let tsxRegistered = runsFromSources

const registerTsx = (file: string): Effect.Effect<void, CliError> =>
  tsxRegistered
    ? Effect.void
    : Effect.tryPromise({
      try: async () => {
        const api = await import("tsx/esm/api")
        api.register()
        tsxRegistered = true
      },
      catch: () =>
        usageError(`--handlers ${file}: loading a TypeScript module needs tsx; install it (npm i -D tsx) or compile the module to .js`)
    })

/** Imports the module at `file` (relative to `cwd`) and returns its handler definitions. */
export const loadHandlers = (
  file: string,
  cwd: string = process.cwd()
): Effect.Effect<ReadonlyArray<HandlerDefinition<never>>, CliError> =>
  Effect.gen(function*() {
    const path = resolve(cwd, file)
    if (!existsSync(path)) return yield* usageError(`--handlers ${file}: no such file (looked at ${path}); give the path of a handlers module`)
    if (/\.[cm]?tsx?$/.test(path)) yield* registerTsx(file)
    const loaded = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(path).href) as Promise<Record<string, unknown>>,
      catch: (e) => operationalError(`--handlers ${file}: the module failed to load (${messageOf(e)}); fix it and start the worker again`)
    })
    if (!("default" in loaded)) {
      return yield* usageError(
        `--handlers ${file}: the module has no default export; export default an object of handlers by task type, or a list of Worker.handler(…) definitions`
      )
    }
    return yield* Effect.try({
      try: () => definitionsFromModule(loaded["default"]),
      catch: (e) => usageError(`--handlers ${file}: ${messageOf(e).replace(/^handlers module: /, "")}`)
    })
  })
