import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Layer, Metric, MetricBoundaries, Option, Stream, TestClock } from "effect"
import { PermanentError } from "../../src/domain/HandlerErrors.js"
import * as MetricsLayer from "../../src/layers/Metrics.js"
import * as MemoryStorage from "../../src/layers/MemoryStorage.js"
import * as Tracing from "../../src/protocol/Tracing.js"
import * as Worker from "../../src/programs/Worker.js"
import * as Metrics from "../../src/services/Metrics.js"
import { Storage } from "../../src/services/Storage.js"
import { makeStack, request, startDashboard, startWorker, workOnce } from "./support.js"

/** One sample of the Prometheus text format. */
interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/**
 * A strict parser of the Prometheus text format 0.0.4: every line is a comment (`# HELP`,
 * `# TYPE`) or a sample `name{labels} value`; a family's TYPE comes before its samples; fails the
 * test on anything else.
 */
const parsePrometheus = (text: string): ReadonlyArray<Sample> => {
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*"
  const sampleLine = new RegExp(`^(${name})(\\{(.*)\\})? (-?[0-9.eE+-]+|NaN|\\+Inf|-Inf)$`)
  expect(text.endsWith("\n")).toBe(true)
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      expect(line).toMatch(new RegExp(`^# HELP ${name} .*$`))
      continue
    }
    if (line.startsWith("# TYPE ")) {
      const m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line)
      expect(m, line).not.toBeNull()
      expect(types.has(m![1]!), `duplicate TYPE ${m![1]}`).toBe(false)
      types.set(m![1]!, m![2]!)
      continue
    }
    const m = sampleLine.exec(line)
    expect(m, `not a Prometheus sample: ${line}`).not.toBeNull()
    const labels: Record<string, string> = {}
    const body = m![3] ?? ""
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g
    let consumed = 0
    for (let l = labelRe.exec(body); l !== null; l = labelRe.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
      consumed += l[0].length
    }
    expect(consumed, `bad labels in ${line}`).toBe(body.length)
    const family = m![1]!.replace(/_(bucket|sum|count)$/, "")
    expect(types.has(m![1]!) || types.has(family), `sample before its TYPE: ${line}`).toBe(true)
    samples.push({ name: m![1]!, labels, value: m![4] === "+Inf" ? Infinity : Number(m![4]) })
  }
  return samples
}

const value = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}): number =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0)

describe("/metrics (acceptance 4)", () => {
  it.scoped("parses as Prometheus text and its counters match a 100-task run", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const dash = yield* startDashboard(stack)
      const before = parsePrometheus((yield* request(`${dash.url}/metrics`)).text || "\n")
      // the run: 100 tasks submitted through the Queue, run by a real Worker: 90 completed, 10 failed for good
      const tasks = yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) =>
        Effect.orDie(stack.producer.submit(i % 2 === 0 ? "even" : "odd", { i })))
      const run = (input: unknown) =>
        Effect.gen(function*() {
          const i = (input as { readonly i: number }).i
          yield* Effect.sleep(Duration.millis(20 + i)) // on TestClock: the measured duration is exactly this
          if (i % 10 === 9) return yield* new PermanentError({ message: "permanent" })
          return i
        })
      const worker = yield* startWorker(stack, [Worker.handler("even", run), Worker.handler("odd", run)], { concurrency: 8, wakeUp: false })
      const events = yield* worker.subscribe
      const seen = yield* events.pipe(Stream.take(200), Stream.runCollect, Effect.fork)
      const terminal = Effect.map(
        Effect.forEach(tasks, (t) => Effect.orDie(stack.producer.get(t.id))),
        (all) => all.every((t) => Option.isSome(t) && (t.value.status === "completed" || t.value.status === "failed"))
      )
      for (let s = 0; s < 1000 && !(yield* terminal); s++) yield* TestClock.adjust("10 millis")
      expect(yield* terminal).toBe(true)
      const workerEvents = Chunk.toReadonlyArray(yield* Fiber.join(seen))
      expect(workerEvents.filter((e) => e._tag === "Completed").length).toBe(90)
      // Until the worker records its own events (Metrics.recordWorkerEvent inside the worker), the test
      // records them from the worker's event stream; once it does, its own counts are what /metrics shows.
      const claimsSoFar = parsePrometheus((yield* request(`${dash.url}/metrics`)).text)
      if (value(claimsSoFar, "buquet_claims_success_total") === value(before, "buquet_claims_success_total")) {
        yield* Effect.forEach(workerEvents, (e) => Metrics.recordWorkerEvent(e), { discard: true })
      }
      const page = yield* request(`${dash.url}/metrics`)
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toContain("text/plain; version=0.0.4")
      const after = parsePrometheus(page.text)
      const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels)
      expect(delta("buquet_tasks_submitted_total")).toBe(100)
      expect(delta("buquet_tasks_submitted_total", { task_type: "even" })).toBe(50)
      expect(delta("buquet_tasks_submitted_total", { task_type: "odd" })).toBe(50)
      expect(delta("buquet_claims_success_total")).toBe(100)
      expect(delta("buquet_tasks_completed_total")).toBe(90)
      expect(delta("buquet_tasks_failed_total", { reason: "permanent" })).toBe(10)
      // i % 10 === 9 is always odd
      expect(delta("buquet_tasks_failed_total", { task_type: "odd" })).toBe(10)
      expect(delta("buquet_task_duration_seconds_count")).toBe(90)
      expect(delta("buquet_task_duration_seconds_bucket", { le: "+Inf" })).toBe(90)
      // durations 20…118 ms: all within 0.25 s, none within 0.01 s
      expect(delta("buquet_task_duration_seconds_bucket", { le: "0.25" })).toBe(90)
      expect(delta("buquet_task_duration_seconds_bucket", { le: "0.01" })).toBe(0)
      expect(delta("buquet_task_duration_seconds_sum")).toBeCloseTo(
        tasks.map((_, i) => i).filter((i) => i % 10 !== 9).reduce((a, i) => a + (20 + i) / 1000, 0),
        6
      )
    }))

  it.effect("buquet_s3_requests_total{kind} counts what the metered storage was asked", () =>
    Effect.gen(function*() {
      const read = Effect.map(MetricsLayer.exposition, parsePrometheus)
      const before = yield* read
      const storage = yield* Storage
      yield* Effect.orDie(storage.put("a", new Uint8Array([1])))
      yield* Effect.orDie(storage.get("a"))
      yield* Effect.orDie(storage.get("b"))
      yield* Effect.orDie(storage.list(""))
      yield* Effect.orDie(storage.deleteMany(Array.from({ length: 1500 }, (_, i) => `k${i}`)))
      const after = yield* read
      const delta = (kind: string) =>
        value(after, "buquet_s3_requests_total", { kind }) - value(before, "buquet_s3_requests_total", { kind })
      expect([delta("PUT"), delta("GET"), delta("LIST"), delta("DELETE")]).toEqual([1, 2, 1, 2])
      const metrics = yield* Metrics.Metrics
      expect(yield* metrics.exposition).toContain("# TYPE buquet_s3_requests_total counter")
    }).pipe(Effect.provide(Layer.merge(MetricsLayer.layerStorage.pipe(Layer.provide(MemoryStorage.layer())), MetricsLayer.layer))))

  it("renders histograms cumulatively with +Inf, escapes label values, sorts families", () => {
    const h = Metric.histogram("t_hist", MetricBoundaries.fromIterable([1, 2]))
    const c = Metric.counter("t_total", { description: "a \\ counter\nwith two lines" })
    Effect.runSync(Effect.all([
      Metric.update(h, 0.5),
      Metric.update(h, 1.5),
      Metric.update(h, 9),
      Metric.incrementBy(Metric.tagged(c, "v", "quote\" back\\ nl\n"), 3)
    ]))
    const text = MetricsLayer.render(Effect.runSync(Metric.snapshot).filter((p) => p.metricKey.name.startsWith("t_")))
    expect(text).toBe(
      [
        "# TYPE t_hist histogram",
        "t_hist_bucket{le=\"1\"} 1",
        "t_hist_bucket{le=\"2\"} 2",
        "t_hist_bucket{le=\"+Inf\"} 3",
        "t_hist_sum 11",
        "t_hist_count 3",
        "# HELP t_total a \\\\ counter\\nwith two lines",
        "# TYPE t_total counter",
        "t_total{v=\"quote\\\" back\\\\ nl\\n\"} 3",
        ""
      ].join("\n")
    )
    const parsed = parsePrometheus(text)
    expect(parsed.find((s) => s.name === "t_total")?.labels["v"]).toBe("quote\" back\\ nl\n")
  })

  it.scoped("Metrics.serve: a worker's /metrics endpoint on a free loopback port", () =>
    Effect.gen(function*() {
      const address = yield* MetricsLayer.serve({ port: 0 })
      expect(address._tag).toBe("TcpAddress")
      const port = address._tag === "TcpAddress" ? address.port : 0
      const page = yield* request(`http://127.0.0.1:${port}/metrics`)
      expect(page.status).toBe(200)
      parsePrometheus(page.text.length === 0 ? "\n" : page.text)
    }))
})

/**
 * Prometheus naming conventions (https://prometheus.io/docs/practices/naming/) over a whole
 * exposition: every family has HELP and TYPE, counters end in `_total` and nothing else does,
 * time is in seconds (`_seconds`, never `_ms`/`_millis`), names are snake_case with the `buquet_`
 * prefix (Effect's own `effect_` series excepted from the prefix only), and no series appears twice.
 * What `promtool check metrics` lints, Effect's runtime series included.
 */
const checkConventions = (text: string): void => {
  const types = new Map<string, string>()
  const helps = new Set<string>()
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (t !== null) types.set(t[1]!, t[2]!)
    const h = /^# HELP (\S+) /.exec(line)
    if (h !== null) helps.add(h[1]!)
  }
  const seen = new Set<string>()
  for (const sample of parsePrometheus(text)) {
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`
    expect(seen.has(key), `duplicate series ${key}`).toBe(false)
    seen.add(key)
  }
  for (const [name, type] of types) {
    // Effect's own series, and the t_* metrics another test of this file puts in the process registry
    if (name.startsWith("t_")) continue
    expect(name, "snake_case with the buquet_ prefix").toMatch(name.startsWith("effect_") ? /^effect_[a-z0-9_]+$/ : /^buquet_[a-z0-9_]+$/)
    expect(helps.has(name), `HELP for ${name}`).toBe(true)
    expect(name.endsWith("_total"), `${name} is a ${type}: only counters end in _total`).toBe(type === "counter")
    expect(name, "time in seconds").not.toMatch(/_(ms|millis|milliseconds|minutes|hours)(_|$)/)
  }
}

describe("the dashboard's /metrics: queue-level series (issue 16 item 8)", () => {
  it.scoped("tasks by status and type, oldest pending age, workers alive, schedule lag — named by Prometheus conventions", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      yield* TestClock.setTime(Date.parse("2026-01-01T00:00:00Z"))
      const a = yield* Effect.orDie(stack.producer.submit("email", { n: 1 }))
      yield* Effect.orDie(stack.producer.submit("email", { n: 2 }))
      yield* Effect.orDie(stack.producer.submit("report", { n: 3 }))
      yield* workOnce(stack, a.id, { error: "bad address" })
      yield* Effect.orDie(stack.raw.put("workers/w-1.json", new TextEncoder().encode(JSON.stringify({
        worker_id: "w-1",
        last_heartbeat: "2026-01-01T00:01:30Z",
        started_at: "2026-01-01T00:00:00Z"
      }))))
      yield* Effect.orDie(stack.raw.put("schedules/hourly.json", new TextEncoder().encode(JSON.stringify({
        id: "hourly",
        task_type: "report",
        cron: "0 * * * *",
        enabled: true,
        input: null,
        created_at: "2026-01-01T00:00:00Z",
        updated_at: "2026-01-01T00:00:00Z"
      }))))
      yield* Effect.orDie(stack.raw.put("schedules/hourly/last_run.json", new TextEncoder().encode(JSON.stringify({
        last_run_at: "2025-12-31T22:00:00Z",
        last_task_id: "x"
      }))))
      // two minutes later: the pending tasks are 120 s old; the 23:00 firing is 3 720 s late
      yield* TestClock.setTime(Date.parse("2026-01-01T00:02:00Z"))
      const dash = yield* startDashboard(stack)
      const page = yield* request(`${dash.url}/metrics`)
      expect(page.status).toBe(200)
      checkConventions(page.text)
      // Effect's runtime series are served too, under the same conventions: the count of live fibers
      // goes down as well as up, so it is a gauge
      expect(page.text).toMatch(/^# TYPE effect_fiber_started_total counter$/m)
      expect(page.text).toMatch(/^# TYPE effect_fiber_active gauge$/m)
      const samples = parsePrometheus(page.text)
      expect(value(samples, "buquet_tasks", { status: "pending", task_type: "email" })).toBe(1)
      expect(value(samples, "buquet_tasks", { status: "failed", task_type: "email" })).toBe(1)
      expect(value(samples, "buquet_tasks", { status: "pending", task_type: "report" })).toBe(1)
      expect(value(samples, "buquet_tasks", { status: "completed" })).toBe(0)
      expect(value(samples, "buquet_oldest_pending_age_seconds", { task_type: "report" })).toBe(120)
      expect(value(samples, "buquet_workers_alive")).toBe(1)
      expect(value(samples, "buquet_workers_registered")).toBe(1)
      expect(value(samples, "buquet_schedule_lag_seconds", { schedule_id: "hourly" })).toBe(3720)
      expect(value(samples, "buquet_dashboard_event_streams")).toBe(0)
    }))
})

describe("Tracing: the trace context travels in the task", () => {
  it.scoped("a submitted task carries the producer span's traceparent; the worker's span joins that trace", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      const task = yield* Effect.orDie(stack.producer.submit("traced", { n: 1 })).pipe(Effect.withSpan("producer"))
      expect(task.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
      const [, traceId, parentSpanId] = task.traceparent!.split("-")
      const span = yield* Tracing.taskSpan("buquet.execute", task)(Effect.currentSpan)
      expect(span.traceId).toBe(traceId)
      expect(span.name).toBe("buquet.execute")
      expect(span.parent._tag === "Some" && span.parent.value.spanId).toBe(parentSpanId)
      expect(span.attributes.get("buquet.task_id")).toBe(task.id)
      // an explicit traceparent wins over the current span
      const given = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
      const explicit = yield* Effect.orDie(stack.producer.submit("traced", 2, { traceparent: given })).pipe(Effect.withSpan("p"))
      expect(explicit.traceparent).toBe(given)
    }))

  it.effect("traceparent helpers: round trip, malformed values ignored", () =>
    Effect.gen(function*() {
      const tp = yield* Effect.flatten(Tracing.currentTraceparent).pipe(Effect.withSpan("s"))
      const parsed = Tracing.parseTraceparent(tp)
      expect(parsed._tag).toBe("Some")
      if (parsed._tag === "Some") expect(Tracing.traceparentOf(parsed.value)).toBe(tp)
      expect(Tracing.parseTraceparent("garbage")._tag).toBe("None")
      expect(Tracing.parseTraceparent("00-xyz-abc-01")._tag).toBe("None")
      expect(Tracing.parseTraceparent(undefined)._tag).toBe("None")
      expect((yield* Tracing.currentTraceparent)._tag).toBe("None")
      const untraced = yield* Tracing.taskSpan("buquet.claim", { id: "t", taskType: "x", attempt: 1, traceparent: "bad" })(Effect.currentSpan)
      expect(untraced.parent._tag).toBe("None")
    }))
})

describe("the dashboard's /metrics: pending tasks no live worker handles (issue 20 item 1)", () => {
  it.scoped("buquet_tasks_unhandled counts them by type within one refresh; an older worker's record (no task_types) means unknown, never an alarm", () =>
    Effect.gen(function*() {
      const stack = yield* makeStack()
      yield* TestClock.setTime(Date.parse("2026-01-01T00:00:00Z"))
      yield* Effect.orDie(stack.producer.submit("send_email", { n: 1 }, { typeCheck: "off" }))
      yield* Effect.orDie(stack.producer.submit("sned_email", { n: 2 }, { typeCheck: "off" }))
      yield* Effect.orDie(stack.producer.submit("sned_email", { n: 3 }, { typeCheck: "off" }))
      const putWorker = (id: string, fields: Record<string, unknown>) =>
        Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (now) =>
          Effect.orDie(stack.raw.put(
            `workers/${id}.json`,
            new TextEncoder().encode(JSON.stringify({ worker_id: id, started_at: "2026-01-01T00:00:00Z", last_heartbeat: new Date(now).toISOString(), ...fields }))
          )))
      const scrape = (url: string) => Effect.map(request(`${url}/metrics`), (r) => parsePrometheus(r.text))
      // a live worker of an older buquet: its types are unknown, so nothing is flagged
      yield* putWorker("w-old", {})
      yield* putWorker("w-mail", { task_types: ["send_email"] })
      const dash = yield* startDashboard(stack)
      let samples = yield* scrape(dash.url)
      expect(samples.filter((x) => x.name === "buquet_tasks_unhandled").map((x) => x.labels["task_type"]).sort()).toEqual(["send_email", "sned_email"])
      expect(value(samples, "buquet_tasks_unhandled", { task_type: "sned_email" })).toBe(0)
      expect(value(samples, "buquet_tasks_unhandled", { task_type: "send_email" })).toBe(0)
      // the old worker stops (its record goes): the misspelled type is flagged at the next refresh
      yield* Effect.orDie(stack.raw.delete("workers/w-old.json"))
      yield* TestClock.adjust("6 seconds")
      yield* putWorker("w-mail", { task_types: ["send_email"] })
      samples = yield* scrape(dash.url)
      expect(value(samples, "buquet_tasks_unhandled", { task_type: "sned_email" })).toBe(2)
      expect(value(samples, "buquet_tasks_unhandled", { task_type: "send_email" })).toBe(0)
      // the only worker that handles send_email goes stale (no heartbeat for 3 minutes): flagged too
      yield* TestClock.adjust("4 minutes")
      samples = yield* scrape(dash.url)
      expect(value(samples, "buquet_tasks_unhandled", { task_type: "send_email" })).toBe(1)
    }))
})
