import { describe, expect, it } from "vitest"
import { fixedCpuMsPerProcess, steadyCpuMsPerTask } from "../../bench/lib/worker-cpu.js"

/** `fixedMs` of start-up, then `n` completions `stepMs` apart in CPU. */
const samples = (n: number, fixedMs: number, stepMs: number) => ({
  completionCpuMicros: Array.from({ length: n }, (_, i) => (fixedMs + stepMs * (i + 1)) * 1000)
})

describe("worker CPU split into fixed and steady", () => {
  it("steady ms/task leaves the start-up cost out", () => {
    expect(steadyCpuMsPerTask([samples(100, 3000, 10)])).toBeCloseTo(10, 9)
    // the total per task the bench reported before counts the start-up: (3000 + 1000) / 100 = 40
    expect(fixedCpuMsPerProcess([samples(100, 3000, 10)])).toBeCloseTo(3000, 9)
  })

  it("weights processes by their completions in the middle 80 %", () => {
    // 100 completions at 10 ms and 300 at 2 ms: (80 × 10 + 240 × 2) / (80 + 240)
    const steady = steadyCpuMsPerTask([samples(100, 500, 10), samples(300, 900, 2)])
    expect(steady).toBeCloseTo((80 * 10 + 240 * 2) / (80 + 240), 9)
    expect(fixedCpuMsPerProcess([samples(100, 500, 10), samples(300, 900, 2)])).toBeCloseTo(700, 9)
  })

  it("leaves out the ramp and the tail", () => {
    // 10 dear tasks (50 ms) at each end of 100, 80 cheap ones (5 ms) between
    const steps = [...Array(10).fill(50), ...Array(80).fill(5), ...Array(10).fill(50)] as Array<number>
    let cpu = 0
    const completionCpuMicros = steps.map((s) => (cpu += s * 1000))
    expect(steadyCpuMsPerTask([{ completionCpuMicros }])).toBeCloseTo(5, 9)
  })

  it("is NaN without enough completions", () => {
    expect(steadyCpuMsPerTask([samples(9, 0, 1)])).toBeNaN()
    expect(steadyCpuMsPerTask([])).toBeNaN()
    expect(fixedCpuMsPerProcess([samples(3, 0, 1)])).toBeNaN()
  })
})
