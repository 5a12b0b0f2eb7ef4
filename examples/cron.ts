/**
 * Cron schedules in Promise style: a schedule that fires every second, and a worker that runs the
 * scheduler loop (`scheduler: true`; one active instance per bucket, by leader election) and the
 * scheduled task's handler. It stops after two firings and deletes the schedule.
 *
 *   npx tsx examples/cron.ts
 *
 * Real schedules use 5-field cron ("0 7 * * 1-5", optionally with a timezone); 6 fields put
 * seconds first. In your own project, import from "buquet/promise" instead of "../src/promise.js".
 *
 * @module
 */
import { connect } from "../src/promise.js"

const queue = await connect({ defaultDirectory: ".buquet-examples" })
try {
  const id = `heartbeat-${process.pid}`
  const { schedule, nextRuns } = await queue.schedules.create({
    id,
    taskType: "report",
    input: { kind: "heartbeat" },
    cron: "* * * * * *",
    missed: "skip"
  })
  console.log(`schedule ${schedule.id} (${schedule.cron}) next fires at ${nextRuns[0]?.toISOString()}`)

  const worker = queue.worker({ scheduler: true })
  let runs = 0
  worker.task("report", async (input, ctx) => {
    runs++
    console.log(`report #${runs} (task ${ctx.taskId})`, input)
    if (runs === 2) void worker.stop()
    return { ok: true }
  })
  await worker.run()

  const status = await queue.schedules.status(id)
  console.log(`last run: ${status.lastRun?.lastRunAt.toISOString()} (task ${status.lastRun?.lastTaskId})`)
  await queue.schedules.delete(id)
} finally {
  await queue.close()
}
