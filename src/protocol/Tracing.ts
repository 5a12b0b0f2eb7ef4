/**
 * Tracing (design.md §8): Effect spans for submit, claim, execute and complete, joined into one
 * trace across processes by the W3C trace context (`traceparent`) carried in the task's optional
 * `traceparent` field.
 *
 * - Producer: `Queue.submit` runs in the span `Queue.submit`; {@link withTraceparent} fills the
 *   submit options' `traceparent` from the current span, so the stored task names it.
 * - Worker: {@link taskSpan} runs claim / execute / complete in a span whose parent is the task's
 *   `traceparent`, so the worker's spans join the producer's trace (in any tracer that exports
 *   both sides).
 *
 * Export: spans go to whatever Effect `Tracer` is provided. Effect's default tracer keeps them in
 * process (they still carry ids, so `traceparent` propagates). To export to OpenTelemetry, provide
 * `NodeSdk.layer(() => ({ resource: { serviceName: "buquet" }, spanProcessor: new
 * BatchSpanProcessor(new OTLPTraceExporter({ url })) }))` from `@effect/opentelemetry` (with
 * `@opentelemetry/sdk-trace-base` and `@opentelemetry/exporter-trace-otlp-http`) around the
 * program — e.g. when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. These packages are not dependencies of
 * buquet: installing them is the operator's choice, and nothing here changes when they are.
 *
 * @module
 */
// Sub-path imports: the "@effect/platform" index loads every module of the package (its HTTP
// server, API docs UI, …), about 30 MB of a worker's memory for two small modules.
import * as Headers from "@effect/platform/Headers"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import { Effect, Option, Tracer } from "effect"

/** The W3C `traceparent` of a span: `00-{trace id}-{span id}-{flags}`. */
export const traceparentOf = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The `traceparent` of the current span, if there is one. */
export const currentTraceparent: Effect.Effect<Option.Option<string>> = Effect.map(
  Effect.option(Effect.currentSpan),
  Option.map(traceparentOf)
)

/**
 * The parents parsed lately, by `traceparent`: a worker parses the same task's for its claim,
 * execute and complete spans (an ExternalSpan is immutable, so one can be shared). Bounded: the
 * oldest goes first.
 */
const parsedParents = new Map<string, Option.Option<Tracer.ExternalSpan>>()
const maxParsedParents = 256

/** Parses a stored `traceparent` into an external parent span; none when absent or malformed. */
export const parseTraceparent = (traceparent: string | null | undefined): Option.Option<Tracer.ExternalSpan> => {
  if (traceparent === undefined || traceparent === null || traceparent.length > 512) return Option.none()
  const known = parsedParents.get(traceparent)
  if (known !== undefined) return known
  const parsed = HttpTraceContext.w3c(Headers.fromInput({ traceparent }))
  if (parsedParents.size >= maxParsedParents) parsedParents.delete(parsedParents.keys().next().value!)
  parsedParents.set(traceparent, parsed)
  return parsed
}

/**
 * Submit options with `traceparent` filled from the current span (an explicit one wins). The
 * Queue's submit calls this, so every task remembers the trace that produced it.
 */
export const withTraceparent = <O extends { readonly traceparent?: string | undefined }>(
  options: O | undefined
): Effect.Effect<O | { readonly traceparent?: string | undefined }> =>
  options?.traceparent !== undefined
    ? Effect.succeed(options)
    : Effect.map(currentTraceparent, (tp) =>
      Option.match(tp, {
        onNone: () => options ?? {},
        onSome: (traceparent) => ({ ...(options ?? {}), traceparent })
      }))

/** The parts of a task a span describes (structural, so any task record fits). */
export interface TracedTask {
  readonly id: string
  readonly taskType: string
  readonly attempt: number
  readonly traceparent?: string | undefined
}

/** The span names of the task's life, as they appear in a trace viewer. */
export type TaskSpanName = "buquet.claim" | "buquet.execute" | "buquet.complete" | "buquet.fail" | "buquet.retry"

/**
 * Runs `effect` in a span named `name` that joins the producer's trace when the task carries a
 * `traceparent` (otherwise it is a child of the current span, or a root). Attributes: task id,
 * type and attempt.
 *
 * No stack trace is captured for the span (`captureStackTrace: false`): Effect's would name this
 * function's caller three frames up, the same few lines of the worker for every task, and it
 * cost a `new Error()` on each of a task's three spans.
 */
export const taskSpan = (name: TaskSpanName | (string & {}), task: TracedTask) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const parent = parseTraceparent(task.traceparent)
  const attributes = {
    "buquet.task_id": task.id,
    "buquet.task_type": task.taskType,
    "buquet.attempt": task.attempt
  }
  return Option.isSome(parent)
    ? Effect.withSpan(effect, name, { parent: parent.value, attributes, kind: "consumer", captureStackTrace: false })
    : Effect.withSpan(effect, name, { attributes, kind: "consumer", captureStackTrace: false })
}

/** Runs `effect` with the task's `traceparent` as its parent span (no span of its own). */
export const withTaskParent = (task: { readonly traceparent?: string | undefined }) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Option.match(parseTraceparent(task.traceparent), {
    onNone: () => effect,
    onSome: (parent) => Effect.withParentSpan(effect, parent)
  })
