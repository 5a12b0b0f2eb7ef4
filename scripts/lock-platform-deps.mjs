// lock-platform-deps.mjs — completes package-lock.json with the platform-specific optional
// packages (rollup, msgpackr-extract, … for other OSes and CPUs) that npm leaves out when the
// registry it talks to does not carry them. Without those entries `npm ci` refuses the lock
// ("Missing: @rollup/rollup-darwin-arm64@ from lock file"); with them it skips them, as they do
// not match this platform. Only adds entries; idempotent. Usage: node scripts/lock-platform-deps.mjs
import { readFileSync, writeFileSync } from "node:fs"

const file = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(file, "utf8"))
const packages = lock.packages
const platform =
  /-(aix|android|darwin|freebsd|linux|netbsd|openbsd|openharmony|sunos|win32)-([a-z0-9]+)(?:-(gnu|musl|gnueabihf|musleabihf|eabi|msvc))?$/
const added = []
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    if (packages[`${path}/node_modules/${name}`] || packages[`node_modules/${name}`]) continue
    const m = platform.exec(name)
    if (!m) continue
    const [, os, cpu, variant] = m
    const record = { version, cpu: [cpu], ...(entry.dev ? { dev: true } : {}), optional: true, os: [os] }
    if (os === "linux" && variant) record.libc = [variant.startsWith("musl") ? "musl" : "glibc"]
    packages[`node_modules/${name}`] = record
    added.push(`${name}@${version}`)
  }
}
if (added.length > 0) {
  const sorted = Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0))
  lock.packages = Object.fromEntries(sorted)
  writeFileSync(file, JSON.stringify(lock, null, 2) + "\n")
}
console.error(`[lock-platform-deps] ${added.length === 0 ? "nothing to add" : `added ${added.join(", ")}`}`)
