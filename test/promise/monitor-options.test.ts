/**
 * The Promise worker's embedded monitor takes the settings of the config file's `[monitor]`
 * section, in milliseconds (`checkIntervalMs`, `sweepIntervalMs` (0 = off), `maxTasksPerScan`,
 * `maxObjectsPerSweep`, `sweepMode`, `workerHealthThresholdMs`, `quietCheckIntervalMs` (0 = off),
 * `retention`), mapped onto the Effect monitor's options as the CLI maps the section, and refuses a
 * value outside the config file's limits at `worker.run()` with the typed `BuquetError`
 * (`InvalidWorkerOptions`) naming the option and the allowed range. In memory.
 */
import { Duration } from "effect"
import { describe, expect, it } from "vitest"
import type { MonitorSettings } from "../../src/promise.js"
import { monitorOption } from "../../src/promise/worker.js"
import { refused, runsOneTask } from "./workerOptions.js"

const millis = (d: Duration.DurationInput | undefined) => d === undefined ? undefined : Duration.toMillis(Duration.decode(d))

describe("queue.worker({ monitor }) takes the [monitor] settings (Promise)", () => {
  it("maps every setting onto the Effect monitor's options, as the CLI maps [monitor]", () => {
    const options = monitorOption({
      checkIntervalMs: 60_000,
      sweepIntervalMs: 900_000,
      maxTasksPerScan: 50,
      maxObjectsPerSweep: 200,
      sweepMode: "on_demand",
      workerHealthThresholdMs: 240_000,
      quietCheckIntervalMs: 1_200_000,
      retention: { olderThanDays: 7, action: "delete" }
    })
    expect(options).not.toBe(false)
    if (options === false) return
    expect(millis(options.checkInterval)).toBe(60_000)
    expect(millis(options.sweepInterval)).toBe(900_000)
    expect(options.maxTasksPerScan).toBe(50)
    expect(options.maxObjectsPerSweep).toBe(200)
    expect(options.sweepMode).toBe("on_demand")
    expect(millis(options.workers?.staleAfter)).toBe(240_000)
    expect(options.quiet).not.toBe(false)
    expect(millis(options.quiet === false ? undefined : options.quiet?.checkInterval)).toBe(1_200_000)
    expect(millis(options.retention?.olderThan)).toBe(7 * 86_400_000)
    expect(options.retention?.action).toBe("delete")
  })

  it("0 turns the sweeper and the quiet mode off; unset settings keep the monitor's defaults", () => {
    const off = monitorOption({ sweepIntervalMs: 0, quietCheckIntervalMs: 0 })
    expect(off).not.toBe(false)
    if (off === false) return
    expect(millis(off.sweepInterval)).toBe(0)
    expect(off.quiet).toBe(false)
    expect(monitorOption(undefined)).toEqual({})
    expect(monitorOption(true)).toEqual({})
    expect(monitorOption({})).toEqual({})
    expect(monitorOption(false)).toBe(false)
  })

  for (
    const [what, monitor, says] of [
      ["checkIntervalMs 0", { checkIntervalMs: 0 }, /monitor\.checkIntervalMs.*1000 to 86400000.*check_interval_secs.*got 0/],
      ["checkIntervalMs 1.5 s", { checkIntervalMs: 1_500.5 }, /monitor\.checkIntervalMs.*integer.*got 1500\.5/],
      ["sweepIntervalMs 500", { sweepIntervalMs: 500 }, /monitor\.sweepIntervalMs.*0 \(off\) or.*1000 to 604800000.*got 500/],
      ["sweepIntervalMs negative", { sweepIntervalMs: -1 }, /monitor\.sweepIntervalMs.*got -1/],
      ["maxTasksPerScan 0", { maxTasksPerScan: 0 }, /monitor\.maxTasksPerScan.*1 to 1000.*got 0/],
      ["maxObjectsPerSweep 1001", { maxObjectsPerSweep: 1_001 }, /monitor\.maxObjectsPerSweep.*1 to 1000.*got 1001/],
      ["sweepMode", { sweepMode: "eager" }, /monitor\.sweepMode.*"continuous" or "on_demand".*got "eager"/],
      ["workerHealthThresholdMs 86400000", { workerHealthThresholdMs: 86_400_000 }, /monitor\.workerHealthThresholdMs.*1000 to 86399000.*got 86400000/],
      ["quietCheckIntervalMs 10", { quietCheckIntervalMs: 10 }, /monitor\.quietCheckIntervalMs.*0 \(off\) or.*got 10/],
      ["retention.olderThanDays 0", { retention: { olderThanDays: 0, action: "delete" } }, /monitor\.retention\.olderThanDays.*1 to 36500.*got 0/],
      ["retention.action", { retention: { olderThanDays: 3, action: "purge" } }, /monitor\.retention\.action.*"archive" or "delete".*got "purge"/]
    ] as const
  ) {
    it(`${what}: run() rejects with InvalidWorkerOptions naming the option and the allowed range`, async () => {
      const error = await refused({ monitor: monitor as unknown as MonitorSettings })
      expect(error._tag).toBe("InvalidWorkerOptions")
      expect(error.code).toBe("INVALID_WORKER_OPTIONS")
      expect(error.message).toMatch(says)
    }, 30_000)
  }

  it("a worker with every monitor setting given runs a task to completion", () =>
    runsOneTask({
      monitor: {
        checkIntervalMs: 60_000,
        sweepIntervalMs: 0,
        maxTasksPerScan: 10,
        maxObjectsPerSweep: 10,
        sweepMode: "on_demand",
        workerHealthThresholdMs: 120_000,
        quietCheckIntervalMs: 0
      }
    }), 60_000)
})
