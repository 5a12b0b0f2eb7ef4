/**
 * The {@link Storage} port on an S3-compatible bucket, design.md §3.
 *
 * - Every request a queue makes takes the lean path of `S3Http` by default (HTTP/1.1 on keep-alive
 *   sockets + SigV4: a sixth of the SDK's CPU per request; S3Xml.ts reads LIST and DeleteObjects answers). The
 *   endpoint, region and credentials come from S3Endpoint.ts where the outcome is certain.
 * - `@aws-sdk/client-s3` (~10 MB of RSS) is imported only when needed: `transport: "sdk"`, an
 *   endpoint or region only the SDK's rules can resolve, listing an object's versions. Credentials
 *   beyond fixed or environment keys come from the SDK's own chain
 *   (`@aws-sdk/credential-provider-node`, ~3 MB), also imported when first needed.
 * - The SDK never retries (`maxAttempts: 1`): transient failures of reads and unconditional
 *   writes are retried here with an Effect `Schedule`; a conditional write that may have landed
 *   (5xx, connection broken after sending) fails with `OutcomeUnknown` and is never retried.
 * - How the server wants the ETag in `If-Match` (Ceph RGW: without quotes) is detected on real
 *   traffic or by the capabilities probe, never guessed.
 * - Every response's `Date` header is published as a {@link DateSample} for the ServerClock,
 *   with local times from the Effect `Clock` of the calling fiber.
 * - All keys live under `keyPrefix`, so several queues or test runs can share one bucket.
 *
 * @module
 */
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3"
import type { NodeHttpHandler as SdkHttpHandler } from "@smithy/node-http-handler"
import type { AwsCredentialIdentity, DeserializeMiddleware, MiddlewareStack, Provider } from "@smithy/types"
import { AsyncLocalStorage } from "node:async_hooks"
import { createHash, randomUUID } from "node:crypto"
import { readFile } from "node:fs/promises"
import type { IncomingHttpHeaders } from "node:http"
import { homedir } from "node:os"
import { join } from "node:path"
import {
  Chunk,
  type Clock,
  Config,
  DateTime,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  PubSub,
  Redacted,
  Ref,
  Schedule,
  type Scope,
  Stream,
  SynchronizedRef
} from "effect"
import {
  AccessDenied,
  conditionalDeleteUnsupported,
  InvalidResponse,
  NoSuchBucket,
  OutcomeUnknown,
  PreconditionFailed,
  StorageUnavailable,
  type StorageReadError,
  type StorageWriteError
} from "../domain/StorageError.js"
import {
  type DateSample,
  type ListOptions,
  type ListPage,
  type ObjectMeta,
  type ObjectVersion,
  type PutCondition,
  Storage,
  type StorageCapabilities,
  type StorageService,
  type StoredObject
} from "../services/Storage.js"
import * as S3Endpoint from "./S3Endpoint.js"
import * as S3Http from "./S3Http.js"
import * as S3Xml from "./S3Xml.js"
import { localMillis } from "./ServerClock.js"

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

const sdkWarningSwitch = "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"

/**
 * Builds the client with the AWS SDK's Node-version warning off (it is about the SDK's future
 * releases, not about buquet, and would land on our users' stderr), unless the user set the
 * SDK's switch themselves. The SDK reads it once, while the first client is built.
 */
const quietNodeVersionWarning = <A>(build: () => A): A => {
  if (process.env[sdkWarningSwitch] !== undefined) return build()
  process.env[sdkWarningSwitch] = "true"
  try {
    return build()
  } finally {
    delete process.env[sdkWarningSwitch]
  }
}

/**
 * Backoff of the layer's own retries of transient failures (5xx, SlowDown, throttling, network).
 *
 * @since 0.1.0
 * @category models
 */
export interface S3RetrySettings {
  /** First delay (default 100 millis). */
  readonly base?: Duration.DurationInput | undefined
  /** Growth factor per retry (default 2). */
  readonly factor?: number | undefined
  /** Cap on one delay (default 5 seconds). */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Retries after the first attempt (default 5; 0 disables retrying). */
  readonly maxRetries?: number | undefined
}

/**
 * Static credentials; without them the SDK's default chain (env, profile, IMDS, …) is used.
 *
 * @since 0.1.0
 * @category models
 */
export interface S3Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string | Redacted.Redacted<string>
  readonly sessionToken?: string | Redacted.Redacted<string> | undefined
}

/**
 * Settings of {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface S3StorageConfig {
  /** The bucket. */
  readonly bucket: string
  /** A custom endpoint (MinIO, RGW, R2, …), e.g. `http://127.0.0.1:7480`. */
  readonly endpoint?: string | undefined
  /** The region (default: the SDK's chain; `us-east-1` when an endpoint is set). */
  readonly region?: string | undefined
  /** Static credentials (default: the SDK's chain). */
  readonly credentials?: S3Credentials | undefined
  /** Path-style addressing (default true when an endpoint is set). */
  readonly forcePathStyle?: boolean | undefined
  /** Every key is stored under this prefix, and listings strip it again (default ""). */
  readonly keyPrefix?: string | undefined
  /** Sockets of the keep-alive agent: size it for the worker's concurrency (default 64). */
  readonly maxSockets?: number | undefined
  /** Timeout of one request, socket to last header (default 30 seconds). */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Backoff of the layer's retries of transient failures. */
  readonly retry?: S3RetrySettings | undefined
  /** Force the `If-Match` ETag form instead of detecting it (default: detect). */
  readonly ifMatchEtag?: "quoted" | "unquoted" | undefined
  /**
   * How requests are sent: `"lean"` (default) over S3Http's own HTTP/1.1 client signed with SigV4,
   * a sixth of the SDK's CPU per request or less, without loading `@aws-sdk/client-s3` (except to list an
   * object's versions, or to resolve an endpoint only its rules can); `"sdk"` through
   * `@aws-sdk/client-s3`. Both pass the same conformance suite and resolve the endpoint, region
   * and credentials the same way.
   */
  readonly transport?: "lean" | "sdk" | undefined
}

/**
 * The retry schedule the layer uses: exponential, jittered, capped per delay, bounded in count.
 *
 * @since 0.1.0
 * @category utils
 */
export const retrySchedule = (settings: S3RetrySettings = {}): Schedule.Schedule<unknown> => {
  const maxDelay = Duration.decode(settings.maxDelay ?? Duration.seconds(5))
  return Schedule.exponential(settings.base ?? Duration.millis(100), settings.factor ?? 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, delay) => Duration.min(delay, maxDelay)),
    Schedule.intersect(Schedule.recurs(Math.max(0, settings.maxRetries ?? 5)))
  )
}

// ---------------------------------------------------------------------------------------------
// Failure classification
// ---------------------------------------------------------------------------------------------

/** What went wrong with one request, before it is mapped onto the port's errors. */
type Fault =
  | { readonly _tag: "Precondition"; readonly message: string }
  | { readonly _tag: "Denied"; readonly message: string }
  | { readonly _tag: "NoBucket"; readonly message: string }
  | { readonly _tag: "NotFound"; readonly message: string }
  /** Worth retrying; `maybeApplied` when the server may have carried the request out. */
  | { readonly _tag: "Transient"; readonly maybeApplied: boolean; readonly message: string }
  | { readonly _tag: "Invalid"; readonly message: string }

const field = (value: unknown, name: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

const THROTTLING = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "TooManyRequestsException",
  "RequestTimeout"
])
const DENIED = new Set(["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "CredentialsProviderError"])
// Errors raised while connecting: the request never left this host.
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"])
// Errors after the connection was up: the server may have received and applied the request.
const BROKEN = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ESOCKETTIMEDOUT", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE"])

/**
 * An HTTP parser (node:http's on the SDK path, Http1Parser.ts on the lean one; the same `HPE_*`
 * codes) rejecting the bytes of an answer ("Parse Error: Expected HTTP/", a bad chunk size): the stream the request went out on is broken (a middlebox or proxy garbled it), not the
 * server's answer wrong. Broken like ECONNRESET: the request may have been applied.
 */
const isParseError = (code: string): boolean => code.startsWith("HPE_")

const networkCode = (error: unknown): string | undefined => {
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 4; e = field(e, "cause"), depth++) {
    const code = str(field(e, "code"))
    if (code !== undefined && (NOT_SENT.has(code) || BROKEN.has(code) || isParseError(code))) return code
    // AggregateError (happy eyeballs) wraps the per-address connect errors
    const errors = field(e, "errors")
    if (Array.isArray(errors) && errors.length > 0) return networkCode(errors[0])
  }
  return undefined
}

/** Maps an SDK rejection (service error, network error, deserialization error) to a {@link Fault}. */
const classify = (error: unknown): Fault => {
  const name = str(field(error, "name")) ?? "Error"
  const message = `${name}: ${str(field(error, "message")) ?? String(error)}`
  const status = field(field(error, "$metadata"), "httpStatusCode")
  if (typeof status === "number") {
    if (name === "NoSuchBucket") return { _tag: "NoBucket", message }
    if (status === 412 || name === "PreconditionFailed") return { _tag: "Precondition", message }
    if (status === 409 && name === "ConditionalRequestConflict") return { _tag: "Precondition", message }
    // refused for the signature's time (host clock off by 15+ min): both paths learnt the server's
    // time from this answer, so the request is safe and worth sending again
    if (S3Http.CLOCK_SKEW.has(name)) return { _tag: "Transient", maybeApplied: false, message: `HTTP ${status} ${message}` }
    if (status === 403 || DENIED.has(name)) return { _tag: "Denied", message }
    if (status === 404) return { _tag: "NotFound", message }
    if (status >= 500) return { _tag: "Transient", maybeApplied: true, message: `HTTP ${status} ${message}` }
    // refused before being carried out: safe to retry, even a conditional write
    if (status === 429 || status === 409 || THROTTLING.has(name)) {
      return { _tag: "Transient", maybeApplied: false, message: `HTTP ${status} ${message}` }
    }
    return { _tag: "Invalid", message: `HTTP ${status} ${message}` }
  }
  if (DENIED.has(name)) return { _tag: "Denied", message }
  const code = networkCode(error)
  if (code !== undefined) return { _tag: "Transient", maybeApplied: !NOT_SENT.has(code), message: `${code} ${message}` }
  if (name === "TimeoutError" || name === "AbortError") return { _tag: "Transient", maybeApplied: true, message }
  return { _tag: "Invalid", message }
}

// ---------------------------------------------------------------------------------------------
// Date header capture
// ---------------------------------------------------------------------------------------------

/**
 * One attempt of one request: the calling fiber's clock, how to abort it when the fiber is
 * interrupted, and what the Date probe saw. It travels to the client-level middleware and request handler through an
 * AsyncLocalStorage, so no per-command middleware or `send` options are needed and the SDK can
 * reuse its resolved middleware stack for every command (`cacheMiddleware`).
 */
interface Attempt extends S3Http.Cancellation {
  readonly clock: Clock.Clock
  /** The SDK path's abort signal, made by {@link viaSdk} only: the lean path needs none. */
  signal: AbortSignal | undefined
  sentAtMillis: number
  sample: DateSample | undefined
}

const attempts = new AsyncLocalStorage<Attempt>()

/** Records the answer's `Date` header (whole seconds) with the local time it arrived. */
const received = (attempt: Attempt, header: string | undefined): void => {
  const receivedAtMillis = localMillis(attempt.clock)
  const serverDateMillis = header === undefined ? Number.NaN : Date.parse(header)
  if (Number.isFinite(serverDateMillis)) {
    attempt.sample = { sentAtMillis: attempt.sentAtMillis, receivedAtMillis, serverDateMillis }
  }
}

/**
 * The Date probe, added once to the client's stack right around the HTTP handler, inside the
 * deserializer: it sees the raw response of every status, including the 404s and 412s the
 * deserializer turns into errors.
 */
const attachDateProbe = <I extends object, O extends object>(stack: MiddlewareStack<I, O>): void => {
  const middleware: DeserializeMiddleware<I, O> = (next) => (args) => {
    const attempt = attempts.getStore()
    if (attempt === undefined) return next(args)
    attempt.sentAtMillis = localMillis(attempt.clock)
    return next(args).then((result) => {
      received(attempt, str(field(field(result.response, "headers"), "date")))
      return result
    })
  }
  stack.addRelativeTo(middleware, {
    relation: "after",
    toMiddleware: "deserializerMiddleware",
    name: "buquetDateProbe",
    override: true
  })
}

/** `@aws-sdk/client-s3` and a client of it, once imported. */
interface Sdk {
  readonly s3: typeof import("@aws-sdk/client-s3")
  readonly client: S3Client
}

/**
 * Imports the SDK and builds its client: a Node HTTP handler that takes each request's abort
 * signal from the current {@link Attempt}, the Date probe on the client's stack.
 */
const loadSdk = async (
  clientConfig: S3ClientConfig,
  agents: { readonly maxSockets: number; readonly requestTimeoutMillis: number }
): Promise<Sdk> => {
  const [s3, { NodeHttpHandler }] = await Promise.all([import("@aws-sdk/client-s3"), import("@smithy/node-http-handler")])
  class AbortingHttpHandler extends NodeHttpHandler {
    override handle(...[request, options]: Parameters<SdkHttpHandler["handle"]>): ReturnType<SdkHttpHandler["handle"]> {
      const signal = attempts.getStore()?.signal
      return super.handle(request, signal === undefined ? options : { ...options, abortSignal: signal })
    }
  }
  const client = quietNodeVersionWarning(() =>
    new s3.S3Client({
      ...clientConfig,
      requestHandler: new AbortingHttpHandler({
        httpAgent: { keepAlive: true, maxSockets: agents.maxSockets },
        httpsAgent: { keepAlive: true, maxSockets: agents.maxSockets },
        requestTimeout: agents.requestTimeoutMillis,
        // without it, a request past requestTimeout only logs a warning and waits on forever
        throwOnRequestTimeout: true,
        // and a body that stops arriving after the headers: the socket's inactivity
        socketTimeout: agents.requestTimeoutMillis,
        connectionTimeout: 5_000
      })
    })
  )
  attachDateProbe(client.middlewareStack)
  return { s3, client }
}

/**
 * The text of the AWS shared config and credentials files ("" for a missing one); undefined when
 * one exists but cannot be read, which leaves the resolution to the SDK.
 */
const sharedConfigText = async (env: Readonly<Record<string, string | undefined>>): Promise<string | undefined> => {
  const home = env["HOME"] !== undefined && env["HOME"] !== "" ? env["HOME"] : homedir()
  const texts = await Promise.all([join(home, ".aws", "config"), join(home, ".aws", "credentials")].map((path) =>
    readFile(path, "utf8").catch((error: unknown) => {
      const code = field(error, "code")
      return code === "ENOENT" || code === "ENOTDIR" ? "" : undefined
    })
  ))
  return texts.some((t) => t === undefined) ? undefined : texts.join("\n")
}

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

type EtagForm = "quoted" | "unquoted"
const unquote = (etag: string): string => etag.replace(/^"(.*)"$/, "$1")
const formatEtag = (etag: string, form: EtagForm): string =>
  form === "unquoted" ? unquote(etag) : `"${unquote(etag)}"`

/** The SDK output of a command, and whether the operation is a conditional write. */
type OpKind = "read" | "write" | "conditional"

const utc = (date: Date | undefined): DateTime.Utc | undefined =>
  date === undefined || Number.isNaN(date.getTime()) ? undefined : DateTime.unsafeMake(date)

const lastModifiedOf = (headers: IncomingHttpHeaders): Date | undefined => {
  const value = headers["last-modified"]
  return value === undefined ? undefined : new Date(value)
}

/** A PUT's answer: its ETag. */
const etagOf = (response: S3Http.LeanResponse): string | undefined => response.headers.etag

const text = (body: Uint8Array): string => Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")

const contentType = (key: string): string => (key.endsWith(".json") ? "application/json" : "application/octet-stream")

/**
 * Builds the S3 Storage service. Scoped: the S3 client (and its keep-alive sockets) is destroyed
 * when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: S3StorageConfig): Effect.Effect<StorageService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const bucket = config.bucket
    const prefix = config.keyPrefix ?? ""
    const maxSockets = config.maxSockets ?? 64
    const requestTimeoutMillis = Duration.toMillis(config.requestTimeout ?? Duration.seconds(30))
    const clientConfig: S3ClientConfig = {
      maxAttempts: 1,
      forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
      // RGW and most S3 clones do not know the newer flexible checksums
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // resolve each command's middleware stack once, not per request (a large share of the
      // CPU per task): possible because nothing is attached per command and no options are passed
      cacheMiddleware: true
    }
    const region = config.region ?? (config.endpoint !== undefined ? "us-east-1" : undefined)
    if (region !== undefined) clientConfig.region = region
    if (config.endpoint !== undefined) clientConfig.endpoint = config.endpoint
    if (config.credentials !== undefined) {
      const { accessKeyId, secretAccessKey, sessionToken } = config.credentials
      const reveal = (s: string | Redacted.Redacted<string>) => (typeof s === "string" ? s : Redacted.value(s))
      clientConfig.credentials = {
        accessKeyId,
        secretAccessKey: reveal(secretAccessKey),
        ...(sessionToken === undefined ? {} : { sessionToken: reveal(sessionToken) })
      }
    }
    // the SDK, imported and built on first use; a failed import is not kept
    let sdkClient: Promise<Sdk> | undefined
    const sdk = (): Promise<Sdk> => {
      sdkClient ??= loadSdk(clientConfig, { maxSockets, requestTimeoutMillis }).catch((error: unknown) => {
        sdkClient = undefined
        return Promise.reject(error)
      })
      return sdkClient
    }
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => sdkClient?.then((h) => h.client.destroy(), () => undefined) ?? Promise.resolve())
    )
    const samples = yield* Effect.acquireRelease(PubSub.sliding<DateSample>(256), PubSub.shutdown)
    // the ServerClock's listener (onDateSample): called where the response arrives, no fiber woken
    const sampleListeners = new Set<(sample: DateSample) => void>()
    const publishSample = (sample: DateSample) => {
      samples.unsafeOffer(sample)
      for (const listener of sampleListeners) {
        try {
          listener(sample)
        } catch {
          // a listener must not throw; if one does, the request still resumes
        }
      }
    }
    const schedule = retrySchedule(config.retry)
    const etagForm = yield* Ref.make<Option.Option<EtagForm>>(Option.fromNullable(config.ifMatchEtag))
    const versioningCache = yield* SynchronizedRef.make(Option.none<StorageCapabilities["versioning"]>())
    const capabilitiesCache = yield* SynchronizedRef.make(Option.none<StorageCapabilities>())

    const full = (key: string) => prefix + key
    const strip = (key: string) => (key.startsWith(prefix) ? key.slice(prefix.length) : key)

    /** One attempt through the SDK: the Date probe and the abort signal find it in {@link attempts}. */
    const viaSdk = <A>(call: (sdk: Sdk) => Promise<A>) => (attempt: Attempt): Promise<A> => {
      const controller = new AbortController()
      attempt.signal = controller.signal
      attempt.cancel = () => controller.abort()
      if (attempt.cancelled) controller.abort()
      return sdk().then((h) => attempts.run(attempt, () => call(h)))
    }

    /**
     * Where the lean path sends, with which credentials: S3Endpoint's answer where it is certain,
     * else the SDK's endpoint rules and credential chain, as before (undefined when its endpoint
     * needs more than plain SigV4: S3 Express, multi-region access points; then every request
     * stays on the SDK).
     */
    const leanTarget = async (): Promise<S3Http.LeanTarget | undefined> => {
      const env = process.env
      const shared = await sharedConfigText(env)
      const resolution: S3Endpoint.Resolution = shared === undefined
        ? { _tag: "Sdk", reason: "a shared AWS config file cannot be read" }
        : S3Endpoint.resolve({ bucket, endpoint: config.endpoint, region, forcePathStyle: clientConfig.forcePathStyle }, env, shared)
      if (resolution._tag === "Lean") {
        const fixed = clientConfig.credentials as AwsCredentialIdentity | undefined ?? S3Endpoint.envCredentials(env)
        let credentials: () => Promise<AwsCredentialIdentity>
        if (fixed !== undefined) {
          const given = Promise.resolve(fixed)
          credentials = () => given
        } else {
          // the SDK's own default chain (profile, SSO, web identity, container, IMDS), cached
          // and refreshed before expiry, as the client would build it
          const { defaultProvider } = await import("@aws-sdk/credential-provider-node")
          credentials = defaultProvider({ parentClientConfig: { region: resolution.region } })
        }
        return { url: resolution.url, region: resolution.region, signingName: "s3", credentials }
      }
      const { s3, client } = await sdk()
      const { getEndpointFromInstructions } = await import("@smithy/core/endpoints")
      // the endpoint depends on the bucket, not the key: resolve it once with the SDK's own rules
      const endpoint = await getEndpointFromInstructions({ Bucket: bucket, Key: "k" }, s3.GetObjectCommand as never, client.config as never)
      const scheme = (endpoint.properties?.["authSchemes"] as ReadonlyArray<Record<string, unknown>> | undefined)?.[0]
      if (scheme !== undefined && scheme["name"] !== "sigv4") return undefined
      if (Object.keys(endpoint.headers ?? {}).length > 0) return undefined
      return {
        url: new URL(String(endpoint.url)),
        region: typeof scheme?.["signingRegion"] === "string" ? scheme["signingRegion"] : await client.config.region(),
        signingName: typeof scheme?.["signingName"] === "string" ? scheme["signingName"] : "s3",
        credentials: client.config.credentials as Provider<AwsCredentialIdentity>
      }
    }

    // the lean path, built on first use; a failed resolution is not kept, so the next request
    // tries again
    let leanClient: Promise<S3Http.LeanClient | undefined> | undefined
    // the same client once resolved, for requests to use at once: no promise, callback and
    // microtask per request in front of the send, which lived as long as the request did
    // (promoted to the old generation while the request waited on the network)
    let leanReady: S3Http.LeanClient | undefined
    const lean = (): Promise<S3Http.LeanClient | undefined> => {
      if (config.transport === "sdk") return Promise.resolve(undefined)
      leanClient ??= leanTarget().then((target) => {
        leanReady = target === undefined ? undefined : S3Http.make({ ...target, maxSockets, requestTimeoutMillis })
        return leanReady
      }).catch((error: unknown) => {
        leanClient = undefined
        return Promise.reject(error)
      })
      return leanClient
    }
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => leanClient?.then((c) => c?.destroy(), () => undefined) ?? Promise.resolve())
    )

    /** One attempt on the lean path, or through the SDK where the lean path is off or unsupported. */
    const viaLean = <A>(
      request: Omit<S3Http.LeanRequest, "cancellation" | "onResponse">,
      orSdk: (attempt: Attempt) => Promise<A>,
      decode: (response: S3Http.LeanResponse) => A
    ) =>
    (attempt: Attempt): Promise<A> =>
      leanReady !== undefined
        ? sendLean(leanReady, request, decode, attempt)
        : lean().then((http) => (http === undefined ? orSdk(attempt) : sendLean(http, request, decode, attempt)))
    const sendLean = <A>(
      http: S3Http.LeanClient,
      request: Omit<S3Http.LeanRequest, "cancellation" | "onResponse">,
      decode: (response: S3Http.LeanResponse) => A,
      attempt: Attempt
    ): Promise<A> => {
      attempt.sentAtMillis = localMillis(attempt.clock)
      return http.send({
        ...request,
        cancellation: attempt,
        onResponse: (headers: IncomingHttpHeaders) => received(attempt, headers.date)
      }).then(decode)
    }

    /**
     * Sends one command: captures its Date header, turns a rejection into a {@link Fault},
     * retries the transient ones that are safe to repeat, and settles with `done` of the result
     * or `failed` of the fault that remains.
     *
     * One `Effect.async` per request, which resumes with the settled value or error: the
     * per-request path is the CPU a worker spends on S3 (issue 17), and each layer on it (map,
     * catchIf, mapError, a generator, a span) costs a few µs to tens of µs. The first attempt
     * runs bare: `Effect.retry` would build the schedule's driver for every request (~17 µs),
     * though nearly all succeed at once. A retryable failure enters the same schedule as
     * `Effect.retry` would have seen it (a first attempt failing with it), so the attempts and
     * their delays are exactly the schedule's.
     */
    const request = <A, B, E>(
      kind: OpKind,
      run: (attempt: Attempt) => Promise<A>,
      done: (a: A) => Effect.Effect<B, E>,
      failed: (fault: Fault) => Effect.Effect<B, E>
    ): Effect.Effect<B, E> => {
      const retryable = (fault: Fault) => fault._tag === "Transient" && (kind !== "conditional" || !fault.maybeApplied)
      const attemptWith = <X, Y>(clock: Clock.Clock, ok: (a: A) => Effect.Effect<X, Y>, ko: (fault: Fault) => Effect.Effect<X, Y>) =>
        Effect.async<X, Y>((resume) => {
          const attempt: Attempt = { clock, signal: undefined, cancelled: false, cancel: undefined, sentAtMillis: 0, sample: undefined }
          run(attempt).then(
            (a) => {
              if (attempt.sample !== undefined) publishSample(attempt.sample)
              resume(ok(a))
            },
            (error: unknown) => {
              if (attempt.sample !== undefined) publishSample(attempt.sample)
              resume(ko(classify(error)))
            }
          )
          // interrupted: abort the request in flight (its connection is destroyed), or never send it
          return Effect.sync(() => {
            attempt.cancelled = true
            attempt.cancel?.()
          })
        })
      const retried = (first: Fault) => {
        let pending = true
        const again = Effect.suspend(() => {
          if (!pending) return Effect.clockWith((clock) => attemptWith(clock, Exit.succeed, Exit.fail))
          pending = false
          return Exit.fail(first)
        })
        return Effect.retry(again, { schedule, while: retryable }).pipe(Effect.matchEffect({ onSuccess: done, onFailure: failed }))
      }
      return Effect.clockWith((clock) => attemptWith(clock, done, (fault) => (retryable(fault) ? retried(fault) : failed(fault))))
    }

    /** {@link request} that settles with the result, or fails with the fault. */
    const send = <A>(kind: OpKind, run: (attempt: Attempt) => Promise<A>): Effect.Effect<A, Fault> =>
      request(kind, run, Exit.succeed, Exit.fail)

    const unavailable = (operation: string, key: string | undefined, message: string) =>
      new StorageUnavailable({ operation, ...(key === undefined ? {} : { key }), message })

    /** Maps a fault of a read or unconditional write onto the port's read errors. */
    const readError = (operation: string, key: string | undefined) => (fault: Fault): StorageReadError => {
      const where = key === undefined ? {} : { key }
      switch (fault._tag) {
        case "Denied":
          return new AccessDenied({ operation, ...where, message: fault.message })
        case "NoBucket":
          return new NoSuchBucket({ bucket, message: fault.message })
        case "Transient":
          return unavailable(operation, key, `gave up after retries: ${fault.message}`)
        default:
          return new InvalidResponse({ operation, ...where, message: fault.message })
      }
    }

    /** Maps a fault of a conditional write: a lost condition, an ambiguous outcome, or a read error. */
    const writeError = (operation: string, key: string) => (fault: Fault): StorageWriteError => {
      switch (fault._tag) {
        case "Precondition":
        case "NotFound": // AWS answers If-Match on a missing key with 404
          return new PreconditionFailed({ key, message: fault.message })
        case "Transient":
          return fault.maybeApplied
            ? new OutcomeUnknown({ key, operation, message: fault.message })
            : unavailable(operation, key, `gave up after retries: ${fault.message}`)
        default:
          return readError(operation, key)(fault)
      }
    }

    const invalid = (operation: string, key: string | undefined, message: string) =>
      new InvalidResponse({ operation, ...(key === undefined ? {} : { key }), message })

    const meta = (
      operation: string,
      key: string,
      etag: string | undefined,
      size: number | undefined,
      lastModified: Date | undefined
    ): Exit.Exit<ObjectMeta, InvalidResponse> => {
      const at = utc(lastModified)
      if (etag === undefined || at === undefined) {
        return Exit.fail(invalid(operation, key, `response lacks ${etag === undefined ? "an ETag" : "a Last-Modified"}`))
      }
      return Exit.succeed({ key, etag, size: size ?? 0, lastModified: at })
    }

    // ---- reads -----------------------------------------------------------------------------

    /** An object as either path read it. */
    interface Fetched {
      readonly etag: string | undefined
      readonly lastModified: Date | undefined
      readonly size: number | undefined
      readonly body: Uint8Array
    }
    const fetchedLean = (r: S3Http.LeanResponse): Fetched => ({
      etag: r.headers.etag,
      lastModified: lastModifiedOf(r.headers),
      size: r.body.length,
      body: r.body
    })

    // get, head, put and delete, the requests a worker makes, carry no span of their own: a span
    // per request cost ~18-29 µs of CPU (Effect.fn's call-site trace and the span), and tracing
    // (protocol/Tracing.ts) wants the task's submit, claim, execute and complete, whose spans
    // these requests run in

    const getObject = (operation: string, key: string, versionId: string | undefined) => {
      const viaCommand = viaSdk((h) =>
        h.client.send(
          new h.s3.GetObjectCommand({ Bucket: bucket, Key: full(key), ...(versionId === undefined ? {} : { VersionId: versionId }) })
        ).then(async (out): Promise<Fetched> => {
          const body = out.Body === undefined ? new Uint8Array(0) : await out.Body.transformToByteArray()
          return { etag: out.ETag, lastModified: out.LastModified, size: body.length, body }
        })
      )
      return request(
        "read",
        viaLean(
          { method: "GET", key: full(key), ...(versionId === undefined ? {} : { query: [["versionId", versionId]] }) },
          viaCommand,
          fetchedLean
        ),
        ({ body, etag, lastModified }): Exit.Exit<Option.Option<StoredObject>, StorageReadError> => {
          const m = meta(operation, key, etag, body.length, lastModified)
          return Exit.isSuccess(m) ? Exit.succeed(Option.some({ ...m.value, body })) : Exit.failCause(m.cause)
        },
        // a missing version, a malformed version id and a delete marker (405) all mean "no such object"
        (fault) =>
          fault._tag === "NotFound" ||
            (versionId !== undefined && fault._tag === "Invalid" && /HTTP (400|405)/.test(fault.message))
            ? Exit.succeed(Option.none())
            : Exit.fail(readError(operation, key)(fault))
      )
    }

    const get = (key: string) => getObject("get", key, undefined)

    const getVersion = Effect.fn("S3Storage.getVersion")(function*(key: string, versionId: string) {
      return yield* getObject("getVersion", key, versionId)
    })

    const head = (key: string) => {
      const viaCommand = viaSdk((h) =>
        h.client.send(new h.s3.HeadObjectCommand({ Bucket: bucket, Key: full(key) })).then((out): Omit<Fetched, "body"> => ({
          etag: out.ETag,
          lastModified: out.LastModified,
          size: out.ContentLength
        }))
      )
      return request(
        "read",
        viaLean({ method: "HEAD", key: full(key) }, viaCommand, (r): Omit<Fetched, "body"> => ({
          etag: r.headers.etag,
          lastModified: lastModifiedOf(r.headers),
          size: r.headers["content-length"] === undefined ? undefined : Number(r.headers["content-length"])
        })),
        (out): Exit.Exit<Option.Option<ObjectMeta>, StorageReadError> => Exit.map(meta("head", key, out.etag, out.size, out.lastModified), Option.some),
        (fault) => (fault._tag === "NotFound" ? Exit.succeed(Option.none()) : Exit.fail(readError("head", key)(fault)))
      )
    }

    // ---- writes ----------------------------------------------------------------------------

    /** One PUT with the header as given; an unconditional one is retried on transient failures. */
    const putOnce = (key: string, body: Uint8Array, header: { IfNoneMatch?: string; IfMatch?: string }) => {
      const conditional = header.IfNoneMatch !== undefined || header.IfMatch !== undefined
      const viaCommand = viaSdk((h) =>
        h.client.send(new h.s3.PutObjectCommand({ Bucket: bucket, Key: full(key), Body: body, ContentType: contentType(key), ...header }))
          .then((out) => out.ETag)
      )
      const headers: Record<string, string> = { "content-type": contentType(key) }
      if (header.IfNoneMatch !== undefined) headers["if-none-match"] = header.IfNoneMatch
      if (header.IfMatch !== undefined) headers["if-match"] = header.IfMatch
      const mapFault = conditional ? writeError("put", key) : readError("put", key)
      return request(
        conditional ? "conditional" : "write",
        viaLean({ method: "PUT", key: full(key), headers, body }, viaCommand, etagOf),
        (etag): Exit.Exit<string, StorageWriteError> =>
          etag === undefined ? Exit.fail(invalid("put", key, "PutObject response lacks an ETag")) : Exit.succeed(etag),
        (fault) => Exit.fail(mapFault(fault))
      )
    }

    /**
     * A compare-and-swap. While the ETag form is unknown, a quoted ETag that gets 412 although the
     * object still carries exactly that ETag proves the server wants it unquoted (Ceph RGW): then
     * the PUT is repeated once unquoted, and the answer is remembered.
     */
    const putIfMatch = (key: string, body: Uint8Array, etag: string) =>
      Effect.flatMap(Ref.get(etagForm), (known) =>
        Option.isSome(known) ? putOnce(key, body, { IfMatch: formatEtag(etag, known.value) }) : putIfMatchLearning(key, body, etag))

    /** {@link putIfMatch} while the ETag form is unknown. */
    const putIfMatchLearning = (key: string, body: Uint8Array, etag: string) =>
      Effect.gen(function*() {
        const sentForm: EtagForm = etag.startsWith("\"") ? "quoted" : "unquoted"
        const first = yield* Effect.either(putOnce(key, body, { IfMatch: etag }))
        if (first._tag === "Right") {
          yield* Ref.set(etagForm, Option.some(sentForm))
          return first.right
        }
        if (first.left._tag !== "PreconditionFailed" || sentForm === "unquoted") return yield* first.left
        const current = yield* head(key)
        if (Option.isNone(current) || unquote(current.value.etag) !== unquote(etag)) return yield* first.left
        const second = yield* putOnce(key, body, { IfMatch: unquote(etag) })
        yield* Ref.set(etagForm, Option.some<EtagForm>("unquoted"))
        return second
      })

    const put = (key: string, body: Uint8Array, condition?: PutCondition): Effect.Effect<string, StorageWriteError> =>
      condition !== undefined && "ifNoneMatch" in condition
        ? putOnce(key, body, { IfNoneMatch: "*" })
        : condition !== undefined && "ifMatch" in condition
        ? putIfMatch(key, body, condition.ifMatch)
        : putOnce(key, body, {})

    const del = (key: string): Effect.Effect<void, StorageReadError> => {
      const viaCommand = viaSdk((h) => h.client.send(new h.s3.DeleteObjectCommand({ Bucket: bucket, Key: full(key) })))
      return request(
        "write",
        viaLean({ method: "DELETE", key: full(key) }, viaCommand, () => undefined),
        () => Exit.void,
        (fault) => (fault._tag === "NotFound" ? Exit.void : Exit.fail(readError("delete", key)(fault)))
      )
    }

    /**
     * `DeleteObject` with `If-Match`, only where the probe proved the server honours it (Ceph RGW
     * ignores the header: there it is refused before anything is sent).
     */
    const deleteIfMatch = Effect.fn("S3Storage.deleteIfMatch")(function*(key: string, etag: string) {
      const caps = yield* capabilities
      if (!caps.conditionalDelete) return yield* conditionalDeleteUnsupported(key)
      const form = Option.getOrElse(yield* Ref.get(etagForm), (): EtagForm => (etag.startsWith("\"") ? "quoted" : "unquoted"))
      yield* send("conditional", deleteIfMatchOnce(key, formatEtag(etag, form))).pipe(
        Effect.mapError(writeError("deleteIfMatch", key))
      )
    })

    /** One DELETE with `If-Match: ifMatch` (the header as sent). */
    const deleteIfMatchOnce = (key: string, ifMatch: string) =>
      viaLean(
        { method: "DELETE", key: full(key), headers: { "if-match": ifMatch } },
        viaSdk((h) => h.client.send(new h.s3.DeleteObjectCommand({ Bucket: bucket, Key: full(key), IfMatch: ifMatch }))),
        () => undefined
      )

    /**
     * DeleteObjects of up to 1000 entries (quiet: the answer names only the keys not deleted).
     * A key that was missing is fine; any other per-key error fails the batch with every such key
     * named, classified like a rejection of the request (AccessDenied, else retried as a 500: a
     * DELETE of the same keys is safe to repeat).
     */
    const deleteBatch = (objects: ReadonlyArray<{ readonly Key: string; readonly VersionId?: string }>) => {
      const failures = (errors: ReadonlyArray<S3Xml.DeleteError>): Promise<void> => {
        const failed = errors.filter((e) => e.code !== "NoSuchKey")
        if (failed.length === 0) return Promise.resolve()
        const named = failed.slice(0, 20).map((e) => `${strip(e.key)}${e.versionId === undefined ? "" : ` (version ${e.versionId})`}: ${e.code} ${e.message}`.trim())
        const more = failed.length > named.length ? `; and ${failed.length - named.length} more` : ""
        const denied = failed.some((e) => e.code === "AccessDenied")
        return Promise.reject(
          Object.assign(new Error(`${failed.length} of ${objects.length} keys not deleted: ${named.join("; ")}${more}`), {
            name: denied ? "AccessDenied" : failed[0]!.code,
            $metadata: { httpStatusCode: denied ? 403 : 500 }
          })
        )
      }
      const body = new TextEncoder().encode(S3Xml.deleteRequest(objects))
      const requested = new Set(objects.map((o) => o.Key))
      const run = viaLean(
        {
          method: "POST",
          key: undefined,
          query: [["delete", ""]],
          // S3 refuses a DeleteObjects without a checksum of its body
          headers: { "content-type": "application/xml", "content-md5": createHash("md5").update(body).digest("base64") },
          body
        },
        viaSdk((h) =>
          h.client.send(new h.s3.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [...objects], Quiet: true } })).then((out) =>
            (out.Errors ?? []).map((e): S3Xml.DeleteError => ({
              key: e.Key ?? "(no key)",
              versionId: e.VersionId,
              code: e.Code ?? "InternalError",
              message: e.Message ?? ""
            }))
          )
        ),
        (r) => S3Xml.deleteResult(text(r.body), requested, `DeleteObjects of ${objects.length} keys`)
      )
      return send("write", (attempt) => run(attempt).then(failures)).pipe(
        Effect.mapError(readError("deleteMany", objects[0] === undefined ? undefined : strip(objects[0].Key)))
      )
    }

    const deleteMany = Effect.fn("S3Storage.deleteMany")(function*(keys: ReadonlyArray<string>) {
      for (const batch of Chunk.chunksOf(Chunk.fromIterable(keys), 1000)) {
        yield* deleteBatch(Chunk.toReadonlyArray(batch).map((key) => ({ Key: full(key) })))
      }
    })

    // ---- listings --------------------------------------------------------------------------

    /**
     * One ListObjectsV2 request, as the server answered it. A malformed page (S3Xml.ts's checks,
     * the same on the SDK's path) is `InvalidResponse` naming the listing's prefix.
     */
    const listOnce = (listPrefix: string, options: ListOptions, maxKeys: number) =>
      Effect.gen(function*() {
        const fullPrefix = full(listPrefix)
        const token = options.continuationToken
        const startAfter = token === undefined && options.startAfter !== undefined && options.startAfter !== ""
          ? full(options.startAfter)
          : undefined
        const what = `ListObjectsV2 of ${JSON.stringify(fullPrefix)}`
        const query: Array<readonly [string, string]> = [["list-type", "2"], ["prefix", fullPrefix], ["max-keys", String(maxKeys)]]
        if (token !== undefined) query.push(["continuation-token", token])
        if (startAfter !== undefined) query.push(["start-after", startAfter])
        if (options.delimiter !== undefined) query.push(["delimiter", options.delimiter])
        const viaCommand = viaSdk((h) =>
          h.client.send(
            new h.s3.ListObjectsV2Command({
              Bucket: bucket,
              Prefix: fullPrefix,
              ...(token !== undefined ? { ContinuationToken: token } : startAfter !== undefined ? { StartAfter: startAfter } : {}),
              MaxKeys: maxKeys,
              ...(options.delimiter !== undefined ? { Delimiter: options.delimiter } : {})
            })
          ).then((out): S3Xml.ListPageXml => {
            const isTruncated = out.IsTruncated === true
            if (isTruncated && (out.NextContinuationToken ?? "") === "") {
              throw new S3Xml.S3XmlError(`${what}: a truncated page has no continuation token`)
            }
            return {
              objects: (out.Contents ?? []).map((o) => {
                if (o.Key === undefined || !o.Key.startsWith(fullPrefix)) throw new S3Xml.S3XmlError(`${what}: a listed object has no key under the prefix`)
                if (o.ETag === undefined || o.LastModified === undefined || Number.isNaN(o.LastModified.getTime())) {
                  throw new S3Xml.S3XmlError(`${what}, object ${JSON.stringify(o.Key)}: no ETag or Last-Modified`)
                }
                return { key: o.Key, etag: o.ETag, size: o.Size ?? 0, lastModified: o.LastModified }
              }),
              commonPrefixes: (out.CommonPrefixes ?? []).flatMap((p) => (p.Prefix === undefined ? [] : [p.Prefix])),
              isTruncated,
              nextContinuationToken: isTruncated ? out.NextContinuationToken : undefined
            }
          })
        )
        const out = yield* send(
          "read",
          viaLean({ method: "GET", key: undefined, query }, viaCommand, (r) => S3Xml.listObjectsV2(text(r.body), fullPrefix, what))
        ).pipe(Effect.mapError(readError("list", listPrefix)))
        const page: ListPage = {
          objects: out.objects.map((o): ObjectMeta => ({
            key: strip(o.key),
            etag: o.etag,
            size: o.size,
            lastModified: DateTime.unsafeMake(o.lastModified)
          })),
          commonPrefixes: out.commonPrefixes.map(strip),
          nextContinuationToken: out.nextContinuationToken
        }
        return page
      })

    const list = Effect.fn("S3Storage.list")(function*(listPrefix: string, options: ListOptions = {}) {
      const want = Math.min(1000, Math.max(1, options.maxKeys ?? 1000))
      let page = yield* listOnce(listPrefix, options, want)
      // RGW may answer a truncated page with fewer entries than asked for (legal S3, but callers
      // page by count): top it up from the continuation token, a few requests at most
      for (let extra = 0; extra < 8; extra++) {
        const have = page.objects.length + page.commonPrefixes.length
        if (page.nextContinuationToken === undefined || have >= want) break
        const more = yield* listOnce(listPrefix, { ...options, continuationToken: page.nextContinuationToken }, want - have)
        const seen = new Set(page.commonPrefixes)
        page = {
          objects: [...page.objects, ...more.objects],
          commonPrefixes: [...page.commonPrefixes, ...more.commonPrefixes.filter((p) => !seen.has(p))],
          nextContinuationToken: more.nextContinuationToken
        }
      }
      return page
    })

    const listAll = (listPrefix: string, options: Omit<ListOptions, "continuationToken" | "delimiter"> = {}) =>
      Stream.paginateChunkEffect(undefined as string | undefined, (token) =>
        list(listPrefix, token === undefined ? options : { ...options, continuationToken: token }).pipe(
          Effect.map((page) => [Chunk.fromIterable(page.objects), Option.fromNullable(page.nextContinuationToken)] as const)
        ))

    // ---- versions --------------------------------------------------------------------------

    const versioningState = SynchronizedRef.modifyEffect(versioningCache, (cached) => {
      if (Option.isSome(cached)) return Effect.succeed([cached.value, cached] as const)
      const viaCommand = viaSdk((h) => h.client.send(new h.s3.GetBucketVersioningCommand({ Bucket: bucket })).then((out) => out.Status))
      return send(
        "read",
        viaLean(
          { method: "GET", key: undefined, query: [["versioning", ""]] },
          viaCommand,
          (r): string | undefined => S3Xml.versioningStatus(text(r.body), "GetBucketVersioning")
        )
      ).pipe(
        Effect.map((status): StorageCapabilities["versioning"] =>
          status === "Enabled" ? "enabled" : status === "Suspended" ? "suspended" : "off"
        ),
        // a role may read objects without being allowed to read the bucket's settings
        Effect.catchIf((fault) => fault._tag === "Denied", () => Effect.succeed("unknown" as const)),
        Effect.mapError(readError("getBucketVersioning", undefined)),
        Effect.map((state) => [state, Option.some(state)] as const)
      )
    })

    const listVersions = Effect.fn("S3Storage.listVersions")(function*(key: string) {
      if ((yield* versioningState) === "off") return []
      const target = full(key)
      const versions: Array<ObjectVersion> = []
      const markers: Array<ObjectVersion> = []
      let keyMarker: string | undefined
      let versionIdMarker: string | undefined
      for (;;) {
        const command = (h: Sdk) => new h.s3.ListObjectVersionsCommand({
          Bucket: bucket,
          Prefix: target,
          ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
          ...(versionIdMarker === undefined ? {} : { VersionIdMarker: versionIdMarker })
        })
        const out = yield* send("read", viaSdk((h) => h.client.send(command(h)))).pipe(
          Effect.mapError(readError("listVersions", key))
        )
        // the prefix also matches longer keys: keep only this one
        for (const v of out.Versions ?? []) {
          const at = utc(v.LastModified)
          if (v.Key !== target || v.VersionId === undefined || at === undefined) continue
          versions.push({ key, versionId: v.VersionId, etag: v.ETag, lastModified: at, isLatest: v.IsLatest === true, isDeleteMarker: false })
        }
        for (const m of out.DeleteMarkers ?? []) {
          const at = utc(m.LastModified)
          if (m.Key !== target || m.VersionId === undefined || at === undefined) continue
          markers.push({ key, versionId: m.VersionId, etag: undefined, lastModified: at, isLatest: m.IsLatest === true, isDeleteMarker: true })
        }
        const beyond = (out.Versions ?? []).concat(out.DeleteMarkers ?? []).some((v) => v.Key !== undefined && v.Key > target)
        if (out.IsTruncated !== true || beyond) break
        keyMarker = out.NextKeyMarker
        versionIdMarker = out.NextVersionIdMarker
        if (keyMarker === undefined) return yield* invalid("listVersions", key, "a truncated listing has no key marker")
      }
      // the SDK splits versions and delete markers; each list is newest first, so merge them
      const merged: Array<ObjectVersion> = []
      let i = 0
      let j = 0
      while (i < versions.length || j < markers.length) {
        const v = versions[i]
        const m = markers[j]
        const takeVersion = m === undefined ||
          (v !== undefined &&
            (v.isLatest || (!m.isLatest && DateTime.toEpochMillis(v.lastModified) >= DateTime.toEpochMillis(m.lastModified))))
        if (takeVersion && v !== undefined) {
          merged.push(v)
          i++
        } else if (m !== undefined) {
          merged.push(m)
          j++
        }
      }
      return merged
    })

    // ---- capabilities ----------------------------------------------------------------------

    /** Removes the probe object, with every version a versioned bucket kept of it. */
    const removeProbe = (key: string) =>
      Effect.gen(function*() {
        const versions = yield* listVersions(key)
        if (versions.length > 0) yield* deleteBatch(versions.map((v) => ({ Key: full(key), VersionId: v.versionId })))
        yield* del(key)
      }).pipe(Effect.ignore)

    const detect = Effect.gen(function*() {
      const versioning = yield* versioningState
      const key = `control/probe/${randomUUID()}`
      const body = (text: string) => new TextEncoder().encode(text)
      const probe = Effect.gen(function*() {
        const created = yield* putOnce(key, body("1"), { IfNoneMatch: "*" })
        const again = yield* Effect.either(putOnce(key, body("2"), { IfNoneMatch: "*" }))
        // a versioned RGW bucket silently accepts the second create
        if (again._tag === "Right" || again.left._tag !== "PreconditionFailed") {
          return { conditionalWrites: false, ifMatchEtag: "not-applicable" as const, conditionalDelete: false }
        }
        // which If-Match form does the server honour? quoted first, as ETags are returned
        let form: EtagForm | undefined
        let etag = created
        for (const candidate of ["quoted", "unquoted"] as const) {
          const r = yield* Effect.either(putOnce(key, body(`3-${candidate}`), { IfMatch: formatEtag(created, candidate) }))
          if (r._tag === "Right") {
            form = candidate
            etag = r.right
            break
          }
        }
        // …and does it refuse a stale one?
        const stale = form === undefined
          ? undefined
          : yield* Effect.either(putOnce(key, body("4"), { IfMatch: formatEtag(created, form) }))
        const ifMatchWorks = form !== undefined && stale?._tag === "Left" && stale.left._tag === "PreconditionFailed"
        // conditional DELETE: a wrong ETag must leave the object in place (RGW ignores the header)
        yield* send("conditional", deleteIfMatchOnce(key, "\"00000000000000000000000000000000\"")).pipe(Effect.either)
        const survived = Option.isSome(yield* head(key))
        const deleted = survived &&
          (yield* send("conditional", deleteIfMatchOnce(key, form === undefined ? etag : formatEtag(etag, form))).pipe(Effect.either))._tag === "Right" &&
          Option.isNone(yield* head(key))
        return {
          conditionalWrites: ifMatchWorks,
          ifMatchEtag: ifMatchWorks && form !== undefined ? form : "not-applicable" as const,
          conditionalDelete: deleted
        }
      }).pipe(
        Effect.ensuring(removeProbe(key)),
        Effect.catchTags({
          PreconditionFailed: (e) => Effect.fail(unavailable("capabilities", key, `the probe was disturbed: ${e.message}`)),
          OutcomeUnknown: (e) => Effect.fail(unavailable("capabilities", key, `the probe was inconclusive: ${e.message}`))
        })
      )
      const found = yield* probe
      const forced = config.ifMatchEtag
      if (found.ifMatchEtag !== "not-applicable" && forced === undefined) {
        yield* Ref.set(etagForm, Option.some(found.ifMatchEtag))
      }
      const capabilities: StorageCapabilities = {
        versioning,
        conditionalWrites: found.conditionalWrites,
        conditionalDelete: found.conditionalDelete,
        ifMatchEtag: forced ?? found.ifMatchEtag,
        clock: "remote"
      }
      return capabilities
    })

    // cached on success only: a failed probe (network blip) is tried again next time
    const capabilities = SynchronizedRef.modifyEffect(capabilitiesCache, (cached) =>
      Option.isSome(cached)
        ? Effect.succeed([cached.value, cached] as const)
        : Effect.map(detect, (c) => [c, Option.some(c)] as const)).pipe(Effect.withSpan("S3Storage.capabilities"))

    const service: StorageService = {
      get,
      head,
      put,
      delete: del,
      deleteIfMatch,
      deleteMany,
      list,
      listAll,
      listVersions,
      getVersion,
      versioning: versioningState,
      capabilities,
      dateSamples: Stream.fromPubSub(samples),
      onDateSample: (listener) =>
        Effect.asVoid(Effect.acquireRelease(
          Effect.sync(() => sampleListeners.add(listener)),
          () => Effect.sync(() => sampleListeners.delete(listener))
        ))
    }
    return service
  })

/**
 * The Storage port on S3. The client is created when the layer is built and destroyed with it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: S3StorageConfig): Layer.Layer<Storage> => Layer.scoped(Storage, make(config))

/**
 * The Storage port on S3, configured from the environment through Effect `Config`: `S3_BUCKET`
 * (required), `S3_ENDPOINT`, `S3_REGION` or `AWS_REGION`, `AWS_ACCESS_KEY_ID` +
 * `AWS_SECRET_ACCESS_KEY` (else the SDK's chain), `S3_KEY_PREFIX`, `S3_FORCE_PATH_STYLE`.
 * `overrides` win over what the environment says.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides: Partial<S3StorageConfig> = {}) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const bucket = yield* Config.string("S3_BUCKET")
      const endpoint = yield* Config.option(Config.string("S3_ENDPOINT"))
      const region = yield* Config.option(Config.string("S3_REGION").pipe(Config.orElse(() => Config.string("AWS_REGION"))))
      const accessKeyId = yield* Config.option(Config.string("AWS_ACCESS_KEY_ID"))
      const secretAccessKey = yield* Config.option(Config.redacted("AWS_SECRET_ACCESS_KEY"))
      const sessionToken = yield* Config.option(Config.redacted("AWS_SESSION_TOKEN"))
      const keyPrefix = yield* Config.string("S3_KEY_PREFIX").pipe(Config.withDefault(""))
      const forcePathStyle = yield* Config.option(Config.boolean("S3_FORCE_PATH_STYLE"))
      const credentials = Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
        ? { accessKeyId: accessKeyId.value, secretAccessKey: secretAccessKey.value, sessionToken: Option.getOrUndefined(sessionToken) }
        : undefined
      return layer({
        bucket,
        endpoint: Option.getOrUndefined(endpoint),
        region: Option.getOrUndefined(region),
        credentials,
        keyPrefix,
        forcePathStyle: Option.getOrUndefined(forcePathStyle),
        ...overrides
      })
    })
  )

/**
 * The S3 Storage layer's constructors, for `S3Storage.layer(config)` style imports.
 *
 * @since 0.1.0
 * @category constants
 */
export const S3Storage = { layer, layerConfig, make, retrySchedule } as const
