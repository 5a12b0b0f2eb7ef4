#!/usr/bin/env -S node --max-old-space-size=256 --max-semi-space-size=8
// The heap flags above bound a long-running worker's memory: without them V8 on a big machine lets
// the garbage of a busy worker pile up to ~4× its live heap before a full collection (a worker at
// concurrency 64 peaked near 300 MB; with them, ~140 MB). bench/ runs its worker processes with
// the same flags, read from this line. `node bin/buquet.js …` or NODE_OPTIONS choose otherwise.
// The `buquet` executable. Runs the compiled CLI (dist/, built by `npm run build`, which `npm ci`
// runs through the `prepare` script) when it is at least as new as the sources; otherwise, in a
// checkout with dev dependencies, runs the TypeScript sources through tsx.
import { existsSync, readdirSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const compiled = join(root, "dist", "cli", "run.js")
const sources = join(root, "src")

const newestMtime = (dir) => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

const distIsFresh = () => existsSync(compiled) && (!existsSync(sources) || statSync(compiled).mtimeMs >= newestMtime(sources))

if (distIsFresh()) {
  await import(pathToFileURL(compiled).href)
} else if (existsSync(join(sources, "cli", "run.ts"))) {
  try {
    const tsx = await import("tsx/esm/api")
    tsx.register()
  } catch {
    console.error("buquet: the compiled CLI is missing or older than the sources, and tsx is not installed; run `npm ci` (or `npm run build`) first")
    process.exit(1)
  }
  await import(pathToFileURL(join(sources, "cli", "run.ts")).href)
} else {
  console.error("buquet: the compiled CLI is missing; run `npm run build` first")
  process.exit(1)
}
