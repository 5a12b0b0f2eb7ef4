// Preloaded into every process test/support/processes.ts spawns (`node --import`): the process
// ends itself once its parent (the vitest worker) is gone, e.g. killed when a run is aborted, so
// no test worker outlives its test run as an orphan. Node 20's `process.ppid` is read once at
// start-up, so the current parent is read from /proc (Linux; elsewhere this does nothing).
import { readFileSync } from "node:fs"
import { setInterval } from "node:timers"

const currentParent = () => {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis
    const stat = readFileSync("/proc/self/stat", "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}
const parent = currentParent()
if (parent !== undefined) {
  setInterval(() => {
    if (currentParent() !== parent) process.kill(process.pid, "SIGKILL")
  }, 1000).unref()
}
