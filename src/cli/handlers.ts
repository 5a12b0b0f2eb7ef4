/**
 * Loading a handlers module for `buquet worker --handlers FILE` (design.md §7): a `.js`/`.mjs`
 * module is imported as is; a `.ts`/`.mts` one through tsx's `tsImport` (ESM or CommonJS, as its
 * package says). The default export (unwrapped once when compiled to CommonJS) is read with
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

/**
 * Imports a TypeScript module with tsx's `tsImport`, which compiles it as its package says (ESM, or
 * CommonJS under npm init's default `"type": "commonjs"`) in a loader of its own: a plain import
 * after tsx's `register()` could not load the CommonJS case ("Cannot require() ES Module … in a
 * cycle" from the compiled CLI, a syntax error at the first type from the sources).
 */
const importTypeScript = (file: string, path: string): Effect.Effect<Record<string, unknown>, CliError> =>
  Effect.tryPromise({
    try: () => import("tsx/esm/api"),
    catch: () => usageError(`--handlers ${file}: loading a TypeScript module needs tsx; install it (npm i -D tsx) or compile the module to .js`)
  }).pipe(
    Effect.flatMap((api) =>
      Effect.tryPromise({
        try: () => api.tsImport(pathToFileURL(path).href, import.meta.url) as Promise<Record<string, unknown>>,
        catch: (e) => loadFailed(file, e)
      })
    )
  )

const loadFailed = (file: string, e: unknown) =>
  operationalError(`--handlers ${file}: the module failed to load (${messageOf(e)}); fix it and start the worker again`)

/**
 * The module's default export. `export default` compiled to CommonJS (by tsc, a bundler, or tsx in
 * a CommonJS package) sets `exports.default` and `__esModule`, and an import's default is then the
 * whole `exports`: the handlers are one level down.
 */
const defaultExport = (loaded: Record<string, unknown>): unknown => {
  const value = loaded["default"]
  return typeof value === "object" && value !== null && (value as { __esModule?: unknown }).__esModule === true && "default" in value
    ? (value as { default: unknown }).default
    : value
}

/** Imports the module at `file` (relative to `cwd`) and returns its handler definitions. */
export const loadHandlers = (
  file: string,
  cwd: string = process.cwd()
): Effect.Effect<ReadonlyArray<HandlerDefinition<never>>, CliError> =>
  Effect.gen(function*() {
    const path = resolve(cwd, file)
    if (!existsSync(path)) return yield* usageError(`--handlers ${file}: no such file (looked at ${path}); give the path of a handlers module`)
    const loaded = /\.[cm]?tsx?$/.test(path)
      ? yield* importTypeScript(file, path)
      : yield* Effect.tryPromise({
        try: () => import(pathToFileURL(path).href) as Promise<Record<string, unknown>>,
        catch: (e) => loadFailed(file, e)
      })
    if (!("default" in loaded)) {
      return yield* usageError(
        `--handlers ${file}: the module has no default export; export default an object of handlers by task type, or a list of Worker.handler(…) definitions`
      )
    }
    return yield* Effect.try({
      try: () => definitionsFromModule(defaultExport(loaded)),
      catch: (e) => usageError(`--handlers ${file}: ${messageOf(e).replace(/^handlers module: /, "")}`)
    })
  })
