// `npm run arch`: checks that imports in src/ point down the floors of design.md §2 and that no
// import cycle exists. Reads the import graph with the TypeScript parser (type-only imports count:
// an arrow is an arrow). Exits 1 and names every offending import when a rule is broken.
//
//   domain ← services ← protocol ← layers ← programs ← Buquet.ts ← promise ← cli ← index.ts, promise.ts
//
// (the CLI runs modules of Promise-style handlers, so cli/ may import promise/, never the reverse)
//
// Usage: node scripts/arch.mjs [root]   (root defaults to the repository of this script)
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), ".."))
const src = path.join(root, "src")

/** The floor of a file under src/, by its first path segment. */
const floorOf = (file) => {
  const rel = path.relative(src, file).split(path.sep)
  if (rel.length > 1) return rel[0]
  if (rel[0] === "Buquet.ts") return "root"
  return "entry" // index.ts, promise.ts: the package's public entry points
}

/** Which floors each floor may import (besides itself). Anything else is an upward arrow. */
const allowed = {
  domain: [],
  services: ["domain"],
  protocol: ["domain", "services"],
  layers: ["domain", "services", "protocol"],
  programs: ["domain", "services", "protocol", "layers"],
  root: ["domain", "services", "protocol", "layers", "programs"],
  cli: ["domain", "services", "protocol", "layers", "programs", "root", "promise"],
  promise: ["domain", "services", "protocol", "layers", "programs", "root"],
  entry: ["domain", "services", "protocol", "layers", "programs", "root", "cli", "promise"]
}

const files = []
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) walk(p)
    else if (/\.(ts|tsx|mts)$/.test(e.name) && !e.name.endsWith(".d.ts")) files.push(p)
  }
}
walk(src)

/** Resolves a relative specifier (`./X.js`) to a source file, or undefined if it is not ours. */
const resolve = (from, spec) => {
  if (!spec.startsWith(".")) return undefined
  const base = path.resolve(path.dirname(from), spec)
  const candidates = [base, base.replace(/\.js$/, ".ts"), base.replace(/\.mjs$/, ".mts"), `${base}.ts`, path.join(base, "index.ts")]
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile())
}

const problems = []
const graph = new Map()
for (const file of files) {
  const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true)
  const targets = []
  for (const ref of info.importedFiles) {
    const target = resolve(file, ref.fileName)
    if (ref.fileName.startsWith(".") && target === undefined) {
      problems.push(`${path.relative(root, file)}: cannot resolve import "${ref.fileName}"`)
      continue
    }
    if (target === undefined) continue
    if (!target.startsWith(src + path.sep)) {
      problems.push(`${path.relative(root, file)}: imports "${ref.fileName}", outside src/`)
      continue
    }
    targets.push(target)
    const from = floorOf(file)
    const to = floorOf(target)
    if (from !== to && !allowed[from].includes(to)) {
      problems.push(`${path.relative(root, file)}: ${from}/ must not import ${to === "root" ? "Buquet.ts" : to + "/"} ("${ref.fileName}")`)
    }
  }
  graph.set(file, targets)
}

// Cycles: strongly connected components of more than one file (or a file importing itself).
let index = 0
const stack = []
const onStack = new Set()
const idx = new Map()
const low = new Map()
const strongConnect = (v) => {
  idx.set(v, index)
  low.set(v, index)
  index++
  stack.push(v)
  onStack.add(v)
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      strongConnect(w)
      low.set(v, Math.min(low.get(v), low.get(w)))
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
  }
  if (low.get(v) === idx.get(v)) {
    const component = []
    let w
    do {
      w = stack.pop()
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) {
      problems.push(`import cycle: ${component.map((f) => path.relative(root, f)).sort().join(" ↔ ")}`)
    }
  }
}
for (const f of files) if (!idx.has(f)) strongConnect(f)

if (problems.length > 0) {
  for (const p of problems) console.error(`arch: ${p}`)
  console.error(`arch: ${problems.length} violation(s) of the floors (design.md §2: imports point down only, no cycles)`)
  process.exit(1)
}
console.log(`arch: ${files.length} files, imports point down, no cycles`)
