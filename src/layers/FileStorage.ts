/**
 * `FileStorage`: the {@link Storage} port on a local directory, with S3's semantics (design.md §3).
 * The embedded default store (`./.buquet/`), safe for several OS processes on one machine.
 *
 * Layout: a key is split at `/`; each segment is percent-encoded (everything but `a-z 0-9 _ -`,
 * so no encoded name contains `.` or an upper-case letter — safe on case-insensitive file systems),
 * the empty segment becomes `%`. Segments but the last are directories; the last is the file
 * `<segment>.obj`. So `a` (`a.obj`) and `a/b` (`a/b.obj`) coexist, and no key (`..`, `/x`, `a//b`)
 * can leave the directory. Names with any other shape (temp files, locks) are never listed.
 *
 * An object file is one header line (`BQ1 {"etag","size","lastModified"}`) and the body, written
 * to a temp file and renamed over the old one, so readers see the old or the new object, never a
 * mix. Every write or delete of a key runs under that key's lock: in-process a striped semaphore,
 * across store instances and processes a lock file `<segment>.lock` holding pid, process start
 * time, time and a random token, created whole (written beside it, then hard-linked into place).
 * A lock is owned by the one acquisition that wrote its token and is never broken while that holder
 * lives, however long it holds it: a lock of another pid is broken only once that process is gone
 * (or its pid now names a process started later); a lock of this pid only if its token is not held
 * in this process (a lost release, or an earlier process with the same pid, as in a container).
 * Breaking takes one breaker at a time (guarded by `<segment>.lock.break`, under the same rule),
 * which re-checks the lock is still the dead one before removing it.
 *
 * Temp files (`<segment>.tmp-<pid>-<uuid>`) left by a writer that died are removed by any listing
 * that walks past them; a live writer's temp files are never touched.
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Clock, DateTime, Duration, Effect, Layer, Option, Schedule, Stream } from "effect"
import { AccessDenied, InvalidResponse, PreconditionFailed, StorageUnavailable } from "../domain/StorageError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import { compareKeys } from "../domain/KeyOrder.js"
import { listAllFromList, Storage } from "../services/Storage.js"
import type {
  ListOptions,
  ListPage,
  ObjectMeta,
  PutCondition,
  StorageCapabilities,
  StorageService,
  StoredObject
} from "../services/Storage.js"
import {
  clampMaxKeys,
  conditionOf,
  listStartAfter,
  md5ETag,
  normalizeETag,
  PageBuilder
} from "./MemoryStorage.js"

/**
 * Options of {@link make} / {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileStorageOptions {
  /** fsync each object before it is renamed into place (survives power loss, costs latency). Default false. */
  readonly fsync?: boolean | undefined
  /**
   * A lock file that cannot be read as a lock (garbage, or a format this version does not know) is
   * removed once it is older than this. A readable lock is never removed while its holder lives,
   * whatever its age. Default 30 s.
   */
  readonly staleLockAfter?: Duration.DurationInput | undefined
  /** Give up waiting for a key's lock after this long (→ `StorageUnavailable`). Default 10 s. */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

// ---------------------------------------------------------------------------------------------
// Key ↔ path mapping
// ---------------------------------------------------------------------------------------------

// Task inputs and outputs are private: only the owner reads the store, whatever the umask (it can
// only take bits away, and these modes give none to group or others).
const dirMode = 0o700
const fileMode = 0o600

const OBJ = ".obj"
const LOCK = ".lock"
/** Longest encoded segment that still fits a 255-byte file name with its suffix and a temp tag. */
const MAX_ENCODED_SEGMENT = 200

const isSafeByte = (b: number): boolean =>
  (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x5f || b === 0x2d

/**
 * Percent-encodes one key segment into a file name (see the module doc).
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeSegment = (segment: string): string => {
  if (segment === "") return "%"
  let out = ""
  for (const b of Buffer.from(segment, "utf8")) {
    out += isSafeByte(b) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

/**
 * Decodes a file name made by {@link encodeSegment}; undefined for any other name.
 *
 * @since 0.1.0
 * @category codecs
 */
export const decodeSegment = (name: string): string | undefined => {
  if (name === "%") return ""
  const bytes: Array<number> = []
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === 0x25) {
      const hex = name.slice(i + 1, i + 3)
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (isSafeByte(c)) {
      bytes.push(c)
    } else {
      return undefined
    }
  }
  return Buffer.from(bytes).toString("utf8")
}

interface KeyPaths {
  readonly dir: string
  readonly dirs: ReadonlyArray<string>
  readonly object: string
  readonly lock: string
  readonly base: string
}

// ---------------------------------------------------------------------------------------------
// node:fs wrapped in Effect
// ---------------------------------------------------------------------------------------------

/** A failed file-system call (internal; mapped to the port's errors at the boundary). */
interface FsFailure {
  readonly _tag: "FsFailure"
  readonly code: string | undefined
  readonly message: string
}

const fsCall = <A>(f: () => Promise<A>): Effect.Effect<A, FsFailure> =>
  Effect.tryPromise({
    try: f,
    catch: (e): FsFailure => {
      const code = typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined
      return { _tag: "FsFailure", code, message: e instanceof Error ? e.message : String(e) }
    }
  })

/** Runs `f`, mapping the given error codes to a value instead of a failure. */
const fsCallOr = <A, B>(f: () => Promise<A>, codes: ReadonlyArray<string>, orElse: B): Effect.Effect<A | B, FsFailure> =>
  fsCall(f).pipe(
    Effect.catchIf((e) => e.code !== undefined && codes.includes(e.code), () => Effect.succeed(orElse))
  )

const toStorageError = (operation: string, key: string | undefined) => (e: FsFailure): StorageReadError =>
  e.code === "EACCES" || e.code === "EPERM"
    ? new AccessDenied({ operation, key, message: `FileStorage: ${e.message}` })
    : new StorageUnavailable({ operation, key, message: `FileStorage: ${e.message}` })

// ---------------------------------------------------------------------------------------------
// Object file format
// ---------------------------------------------------------------------------------------------

interface Header {
  readonly etag: string
  readonly size: number
  readonly lastModified: number
}

const MAGIC = "BQ1 "

const encodeObject = (header: Header, body: Uint8Array): Buffer =>
  Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`, "utf8"), body])

/** Splits an object file into header and body; undefined if it is not one. */
const decodeObject = (data: Buffer): { readonly header: Header; readonly body: Uint8Array } | undefined => {
  const nl = data.indexOf(0x0a)
  if (nl < 0 || data.subarray(0, MAGIC.length).toString("utf8") !== MAGIC) return undefined
  const header = parseHeader(data.subarray(MAGIC.length, nl).toString("utf8"))
  if (header === undefined) return undefined
  return { header, body: new Uint8Array(data.subarray(nl + 1)) }
}

const parseHeader = (json: string): Header | undefined => {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return undefined
  }
  if (
    typeof value === "object" && value !== null && "etag" in value && typeof value.etag === "string" &&
    "size" in value && typeof value.size === "number" && "lastModified" in value &&
    typeof value.lastModified === "number"
  ) {
    return { etag: value.etag, size: value.size, lastModified: value.lastModified }
  }
  return undefined
}

/**
 * A file in the store that is not an object file (written over by hand, a disk error): it is read
 * as an object whose body is the file's bytes, with an ETag from their hash and the file's mtime,
 * as S3 would serve a garbage object. So one bad file is one malformed key for the layer above
 * (which names it), not a failure of every LIST; and it can be replaced by CAS or deleted.
 */
const rawObject = (data: Buffer, mtimeMs: number): { readonly header: Header; readonly body: Uint8Array } => ({
  header: {
    etag: `"raw-${createHash("sha256").update(data).digest("hex").slice(0, 32)}"`,
    size: data.byteLength,
    lastModified: Math.floor(mtimeMs)
  },
  body: new Uint8Array(data)
})

/** Header lines are short; this many bytes always hold one. */
const HEADER_READ = 512

// ---------------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------------

interface LockContent {
  readonly pid: number
  /** The holder process's start time where the OS tells it (Linux), so a reused pid is told apart. */
  readonly start?: string | undefined
  readonly at: number
  readonly token: string
}

const parseLock = (text: string): LockContent | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (
    typeof value === "object" && value !== null && "pid" in value && typeof value.pid === "number" &&
    "at" in value && typeof value.at === "number" && "token" in value && typeof value.token === "string"
  ) {
    const start = "start" in value && typeof value.start === "string" ? value.start : undefined
    return { pid: value.pid, start, at: value.at, token: value.token }
  }
  return undefined
}

/** Whether a process with this pid exists on this machine (EPERM: exists, not ours). */
const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return typeof e === "object" && e !== null && "code" in e && e.code === "EPERM"
  }
}

/** Linux: a process's start time (field 22 of `/proc/<pid>/stat`); undefined where unknown. */
const processStart = (pid: number): Effect.Effect<string | undefined> =>
  Effect.promise(() =>
    fs.readFile(`/proc/${pid}/stat`, "utf8").then(
      (stat) => stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
      () => undefined
    )
  )

const HELD_HERE = Symbol.for("buquet/FileStorage/heldHere")

/**
 * The lock tokens and temp file names this process holds right now, shared by every store
 * instance (and every copy of this module) in it: a file of this pid whose name is not here is a
 * leftover, never another instance's live lock or write.
 */
const heldHere: Set<string> = (() => {
  const g = globalThis as { [HELD_HERE]?: Set<string> }
  return (g[HELD_HERE] ??= new Set<string>())
})()

/** `<segment>.tmp-<pid>-<uuid>`: a temp file and the process that writes it. */
const TEMP = /\.tmp-(\d+)-[0-9a-f-]{36}$/

const tempName = (base: string): string => `${base}.tmp-${process.pid}-${randomUUID()}`

/** Whether a temp file seen in a directory can no longer be renamed into place by its writer. */
const tempAbandoned = (name: string): boolean => {
  const match = TEMP.exec(name)
  if (match === null) return false
  const pid = Number(match[1])
  return pid === process.pid ? !heldHere.has(name) : !pidAlive(pid)
}

/** The lock is held by someone else (retry later). */
interface Busy {
  readonly _tag: "Busy"
}
const busy: Busy = { _tag: "Busy" }

const STRIPES = 64

const stripeOf = (key: string): number => {
  let h = 0
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0
  return (h >>> 0) % STRIPES
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

/**
 * Opens (creating if needed) a directory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  directory: string,
  options?: FileStorageOptions
): Effect.Effect<StorageService, StorageUnavailable | AccessDenied> =>
  Effect.gen(function*() {
    const root = path.resolve(directory)
    const staleAfterMillis = Duration.toMillis(Duration.decode(options?.staleLockAfter ?? Duration.seconds(30)))
    const lockTimeout = Duration.decode(options?.lockTimeout ?? Duration.seconds(10))
    const doFsync = options?.fsync === true
    const selfStart = yield* processStart(process.pid)
    yield* fsCall(() => fs.mkdir(root, { recursive: true, mode: dirMode })).pipe(
      Effect.mapError((e) =>
        e.code === "EACCES" || e.code === "EPERM"
          ? new AccessDenied({ operation: "open", message: `FileStorage ${root}: ${e.message}` })
          : new StorageUnavailable({ operation: "open", message: `FileStorage ${root}: ${e.message}` })
      )
    )
    // In-process writers of one key queue here, so they never poll each other's lock files.
    const stripes = yield* Effect.forEach(Array.from({ length: STRIPES }), () => Effect.makeSemaphore(1))

    const pathsOf = (operation: string, key: string): Effect.Effect<KeyPaths, InvalidResponse> => {
      const segments = key.split("/")
      const encoded = segments.map(encodeSegment)
      const tooLong = encoded.find((s) => s.length > MAX_ENCODED_SEGMENT)
      if (tooLong !== undefined) {
        return Effect.fail(
          new InvalidResponse({
            operation,
            key,
            message: `FileStorage cannot store ${JSON.stringify(key)}: a key segment encodes to more than ${MAX_ENCODED_SEGMENT} bytes`
          })
        )
      }
      const dirs = encoded.slice(0, -1)
      const base = encoded[encoded.length - 1]!
      const dir = path.join(root, ...dirs)
      return Effect.succeed({
        dir,
        dirs,
        base,
        object: path.join(dir, base + OBJ),
        lock: path.join(dir, base + LOCK)
      })
    }

    const now = Clock.currentTimeMillis

    // -- reading ---------------------------------------------------------------------------

    const readObject = (operation: string, key: string, file: string) =>
      fsCallOr(() => fs.readFile(file), ["ENOENT", "ENOTDIR"], undefined).pipe(
        Effect.mapError(toStorageError(operation, key)),
        Effect.flatMap((data) => {
          if (data === undefined) return Effect.succeed(Option.none<StoredObject>())
          const parsed = decodeObject(data)
          if (parsed === undefined) {
            return fsCallOr(() => fs.stat(file), ["ENOENT", "ENOTDIR"], undefined).pipe(
              Effect.mapError(toStorageError(operation, key)),
              Effect.map((stat) => {
                if (stat === undefined) return Option.none<StoredObject>()
                const raw = rawObject(data, stat.mtimeMs)
                return Option.some<StoredObject>({
                  key,
                  etag: raw.header.etag,
                  size: raw.header.size,
                  lastModified: DateTime.unsafeMake(raw.header.lastModified),
                  body: raw.body
                })
              })
            )
          }
          const decoded = parsed
          return Effect.succeed(Option.some<StoredObject>({
            key,
            etag: decoded.header.etag,
            size: decoded.body.byteLength,
            lastModified: DateTime.unsafeMake(decoded.header.lastModified),
            body: decoded.body
          }))
        })
      )

    const readHeader = (operation: string, key: string, file: string): Effect.Effect<Option.Option<ObjectMeta>, StorageReadError> =>
      Effect.acquireUseRelease(
        fsCallOr(() => fs.open(file, "r"), ["ENOENT", "ENOTDIR"], undefined),
        (handle) =>
          handle === undefined
            ? Effect.succeed(Option.none<ObjectMeta>())
            : fsCall(() => handle.read(Buffer.alloc(HEADER_READ), 0, HEADER_READ, 0)).pipe(
              Effect.flatMap(({ buffer, bytesRead }) => {
                const decoded = decodeObject(buffer.subarray(0, bytesRead))
                return decoded === undefined
                  ? Effect.zipWith(fsCall(() => handle.readFile()), fsCall(() => handle.stat()), (data, stat) => {
                    const raw = rawObject(data, stat.mtimeMs)
                    return Option.some<ObjectMeta>({
                      key,
                      etag: raw.header.etag,
                      size: raw.header.size,
                      lastModified: DateTime.unsafeMake(raw.header.lastModified)
                    })
                  })
                  : Effect.succeed(Option.some<ObjectMeta>({
                    key,
                    etag: decoded.header.etag,
                    size: decoded.header.size,
                    lastModified: DateTime.unsafeMake(decoded.header.lastModified)
                  }))
              })
            ),
        (handle) => (handle === undefined ? Effect.void : Effect.ignore(fsCall(() => handle.close())))
      ).pipe(
        Effect.mapError((e): StorageReadError =>
          e.code === undefined ? new InvalidResponse({ operation, key, message: `FileStorage: ${e.message}` }) : toStorageError(operation, key)(e)
        )
      )

    // -- locking ---------------------------------------------------------------------------

    /** Whether the holder of a lock (or break guard) may still be inside its critical section. */
    const holderAlive = (holder: LockContent): Effect.Effect<boolean> => {
      if (holder.pid === process.pid) return Effect.succeed(heldHere.has(holder.token))
      if (!pidAlive(holder.pid)) return Effect.succeed(false)
      if (holder.start === undefined) return Effect.succeed(true)
      return processStart(holder.pid).pipe(Effect.map((start) => start === undefined || start === holder.start))
    }

    /**
     * Creates `file` holding `content` unless it exists, whole: written to a temp file, then
     * hard-linked into place (which fails if `file` exists), so nobody ever reads it half-written.
     */
    const createExclusive = (p: KeyPaths, file: string, content: string): Effect.Effect<"created" | "exists", FsFailure> =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const name = tempName(p.base)
          heldHere.add(name)
          return name
        }),
        (name) =>
          fsCall(() => fs.writeFile(path.join(p.dir, name), content, { flag: "wx", mode: fileMode })).pipe(
            Effect.zipRight(fsCallOr(() => fs.link(path.join(p.dir, name), file).then(() => "created" as const), ["EEXIST"], "exists" as const))
          ),
        (name) =>
          fsCallOr(() => fs.unlink(path.join(p.dir, name)), ["ENOENT"], undefined).pipe(
            Effect.ignore,
            Effect.ensuring(Effect.sync(() => heldHere.delete(name)))
          )
      )

    /** Content for a new lock or guard file owned by `token`. */
    const lockContent = (token: string) =>
      now.pipe(Effect.map((at) => JSON.stringify({ pid: process.pid, start: selfStart, at, token } satisfies LockContent)))

    /** Whether a lock file's text belongs to nobody who could still use it (so it may be removed). */
    const abandoned = (file: string, text: string) =>
      Effect.gen(function*() {
        const holder = parseLock(text)
        if (holder !== undefined) return !(yield* holderAlive(holder))
        // Not a lock this version writes (we create locks whole): judge garbage by its age.
        const stat = yield* fsCallOr(() => fs.stat(file), ["ENOENT"], undefined)
        return stat !== undefined && (yield* now) - stat.mtimeMs > staleAfterMillis
      })

    /**
     * Runs `use` with a fresh token registered as held by this process for its whole run — from
     * before a lock file naming it can exist — so no instance here takes that file for a leftover.
     * `keep`: the token stays registered after a success (a lock, released by {@link releaseLock}).
     */
    const withToken = <A, E>(keep: boolean, use: (token: string) => Effect.Effect<A, E>) =>
      Effect.suspend(() => {
        const token = randomUUID()
        heldHere.add(token)
        return use(token).pipe(
          Effect.onExit((exit) => (keep && exit._tag === "Success" ? Effect.void : Effect.sync(() => heldHere.delete(token))))
        )
      })

    /** Removes an abandoned lock, unless it changed since it was judged so. One breaker at a time. */
    const breakLock = (p: KeyPaths, seen: string) =>
      withToken(false, (token) =>
        Effect.gen(function*() {
          const guard = p.lock + ".break"
          const created = yield* createExclusive(p, guard, yield* lockContent(token))
          if (created === "exists") {
            // Another breaker is at work; if it died mid-way, its guard is abandoned in turn.
            const text = yield* fsCallOr(() => fs.readFile(guard, "utf8"), ["ENOENT"], undefined)
            if (text !== undefined && (yield* abandoned(guard, text))) {
              const again = yield* fsCallOr(() => fs.readFile(guard, "utf8"), ["ENOENT"], undefined)
              if (again === text) yield* fsCallOr(() => fs.unlink(guard), ["ENOENT"], undefined)
            }
            return
          }
          // Holding the guard, with the lock's holder gone, nobody else can change the lock file.
          yield* Effect.ensuring(
            Effect.gen(function*() {
              const current = yield* fsCallOr(() => fs.readFile(p.lock, "utf8"), ["ENOENT"], undefined)
              if (current === seen) yield* fsCallOr(() => fs.unlink(p.lock), ["ENOENT"], undefined)
            }),
            Effect.ignore(fsCallOr(() => fs.unlink(guard), ["ENOENT"], undefined))
          )
        }))

    /** One attempt to take the key's lock file: its token, or `Busy`. */
    const tryLock = (p: KeyPaths): Effect.Effect<string, Busy | FsFailure> =>
      withToken(true, (token) =>
        Effect.gen(function*() {
          const content = yield* lockContent(token)
          for (let attempt = 0; attempt < 5; attempt++) {
            const created = yield* createExclusive(p, p.lock, content).pipe(
              // The directory is missing: a new key, or removed by a concurrent delete's pruning.
              Effect.catchIf(
                (e) => e.code === "ENOENT",
                () => fsCall(() => fs.mkdir(p.dir, { recursive: true, mode: dirMode })).pipe(Effect.as("retry" as const))
              )
            )
            if (created === "created") return token
            if (created === "retry") continue
            const held = yield* fsCallOr(() => fs.readFile(p.lock, "utf8"), ["ENOENT"], undefined)
            if (held === undefined) continue // released in the meantime
            if (yield* abandoned(p.lock, held)) yield* breakLock(p, held)
            return yield* Effect.fail(busy)
          }
          return yield* Effect.fail(busy)
        }))

    const releaseLock = (p: KeyPaths, token: string) =>
      fsCallOr(() => fs.readFile(p.lock, "utf8"), ["ENOENT"], undefined).pipe(
        Effect.flatMap((text) =>
          text !== undefined && parseLock(text)?.token === token
            ? fsCallOr(() => fs.unlink(p.lock), ["ENOENT"], undefined)
            : Effect.void
        ),
        Effect.ignore,
        // Only now: had the unlink failed, the file is a leftover that this process may break.
        Effect.ensuring(Effect.sync(() => heldHere.delete(token)))
      )

    const lockRetry = Schedule.exponential(Duration.millis(1), 1.5).pipe(
      Schedule.union(Schedule.spaced(Duration.millis(25))),
      Schedule.jittered,
      Schedule.upTo(lockTimeout)
    )

    /** Runs `body` holding the key's lock (in-process stripe, then the lock file); `body` is uninterruptible. */
    const withKeyLock = <A, E>(operation: string, key: string, p: KeyPaths, body: Effect.Effect<A, E>) =>
      stripes[stripeOf(key)]!.withPermits(1)(
        Effect.scoped(
          Effect.gen(function*() {
            yield* Effect.acquireRelease(tryLock(p), (token) => releaseLock(p, token)).pipe(
              Effect.retry({ schedule: lockRetry, while: (e) => e._tag === "Busy" })
            )
            return yield* Effect.uninterruptible(body)
          })
        )
      ).pipe(
        Effect.catchIf(
          (e): e is Busy | FsFailure => typeof e === "object" && e !== null && "_tag" in e && (e._tag === "Busy" || e._tag === "FsFailure"),
          (e) =>
            e._tag === "Busy"
              ? Effect.fail(new StorageUnavailable({ operation, key, message: `FileStorage: timed out waiting for the lock of ${key}` }))
              : Effect.fail(toStorageError(operation, key)(e))
        )
      )

    /** Removes the now-empty directories above a deleted object (fails harmlessly when not empty). */
    const pruneDirs = (p: KeyPaths) =>
      Effect.gen(function*() {
        for (let depth = p.dirs.length; depth > 0; depth--) {
          const dir = path.join(root, ...p.dirs.slice(0, depth))
          const removed = yield* fsCallOr(() => fs.rmdir(dir).then(() => true), ["ENOTEMPTY", "EEXIST", "ENOENT", "EBUSY"], false)
          if (!removed) return
        }
      }).pipe(Effect.ignore)

    // -- the port --------------------------------------------------------------------------

    const get = Effect.fn("FileStorage.get")(function*(key: string) {
      const p = yield* pathsOf("get", key)
      return yield* readObject("get", key, p.object)
    })

    const head = Effect.fn("FileStorage.head")(function*(key: string) {
      const p = yield* pathsOf("head", key)
      return yield* readHeader("head", key, p.object)
    })

    const put = Effect.fn("FileStorage.put")(function*(key: string, body: Uint8Array, condition?: PutCondition) {
      const p = yield* pathsOf("put", key)
      const lastModified = yield* now
      const etag = md5ETag(body)
      const data = encodeObject({ etag, size: body.byteLength, lastModified }, body)
      const cond = conditionOf(condition)
      const write = Effect.gen(function*() {
        if (cond._tag !== "None") {
          const existing = yield* readHeader("put", key, p.object)
          if (cond._tag === "IfNoneMatch" && Option.isSome(existing)) {
            return yield* new PreconditionFailed({ key, message: `If-None-Match: * failed: ${key} exists` })
          }
          if (cond._tag === "IfMatch") {
            if (Option.isNone(existing)) {
              return yield* new PreconditionFailed({ key, message: `If-Match failed: ${key} does not exist` })
            }
            if (normalizeETag(existing.value.etag) !== normalizeETag(cond.etag)) {
              return yield* new PreconditionFailed({
                key,
                message: `If-Match failed: ${key} has ETag ${existing.value.etag}, not ${cond.etag}`
              })
            }
          }
        }
        const name = tempName(p.base)
        const temp = path.join(p.dir, name)
        heldHere.add(name)
        yield* fsCall(async () => {
          const handle = await fs.open(temp, "wx", fileMode)
          try {
            await handle.writeFile(data)
            if (doFsync) await handle.sync()
          } finally {
            await handle.close()
          }
          await fs.rename(temp, p.object)
        }).pipe(
          Effect.tapError(() => Effect.ignore(fsCall(() => fs.unlink(temp)))),
          Effect.ensuring(Effect.sync(() => heldHere.delete(name))),
          Effect.mapError(toStorageError("put", key))
        )
        return etag
      })
      return yield* withKeyLock("put", key, p, write)
    })

    const deleteOne = (operation: string, key: string) =>
      Effect.gen(function*() {
        const p = yield* pathsOf(operation, key)
        yield* withKeyLock(
          operation,
          key,
          p,
          fsCallOr(() => fs.unlink(p.object), ["ENOENT", "ENOTDIR"], undefined).pipe(Effect.mapError(toStorageError(operation, key)))
        )
        yield* pruneDirs(p)
      })

    const del = Effect.fn("FileStorage.delete")(function*(key: string) {
      yield* deleteOne("delete", key)
    })

    const deleteIfMatch = Effect.fn("FileStorage.deleteIfMatch")(function*(key: string, etag: string) {
      const p = yield* pathsOf("deleteIfMatch", key)
      yield* withKeyLock(
        "deleteIfMatch",
        key,
        p,
        Effect.gen(function*() {
          const existing = yield* readHeader("deleteIfMatch", key, p.object)
          if (Option.isNone(existing)) {
            return yield* new PreconditionFailed({ key, message: `If-Match failed: ${key} does not exist` })
          }
          if (normalizeETag(existing.value.etag) !== normalizeETag(etag)) {
            return yield* new PreconditionFailed({ key, message: `If-Match failed: ${key} has ETag ${existing.value.etag}, not ${etag}` })
          }
          yield* fsCallOr(() => fs.unlink(p.object), ["ENOENT", "ENOTDIR"], undefined).pipe(
            Effect.mapError(toStorageError("deleteIfMatch", key))
          )
        })
      )
      yield* pruneDirs(p)
    })

    const deleteMany = Effect.fn("FileStorage.deleteMany")(function*(keys: ReadonlyArray<string>) {
      yield* Effect.forEach(keys, (key) => deleteOne("deleteMany", key), { concurrency: 16, discard: true })
    })

    interface Found {
      readonly key: string
      readonly file: string
    }

    const list = Effect.fn("FileStorage.list")(function*(prefix: string, options?: ListOptions) {
      const startAfter = listStartAfter(options)
      const builder = new PageBuilder<Found>(prefix, startAfter, options?.delimiter, clampMaxKeys(options?.maxKeys))
      const segments = prefix.split("/")
      const partial = segments[segments.length - 1]!
      const full = segments.slice(0, -1)
      const baseKey = full.length === 0 ? "" : full.join("/") + "/"
      const startDir = path.join(root, ...full.map(encodeSegment))

      // Walks one directory in bytewise key order; only descends where keys can still qualify.
      const walk = (dir: string, base: string, namePrefix: string): Effect.Effect<boolean, FsFailure> =>
        Effect.gen(function*() {
          const entries = yield* fsCallOr(() => fs.readdir(dir, { withFileTypes: true }), ["ENOENT", "ENOTDIR"], [])
          const items: Array<{ readonly sortKey: string; readonly dir: boolean; readonly name: string }> = []
          for (const e of entries) {
            // A temp file whose writer died will never be renamed into place: clear it away.
            if (e.isFile() && tempAbandoned(e.name)) {
              yield* Effect.ignore(fsCallOr(() => fs.unlink(path.join(dir, e.name)), ["ENOENT"], undefined))
              continue
            }
            const isDir = e.isDirectory()
            if (isDir ? e.name.includes(".") : !(e.isFile() && e.name.endsWith(OBJ))) continue
            const encoded = isDir ? e.name : e.name.slice(0, -OBJ.length)
            if (encoded.includes(".")) continue
            const segment = decodeSegment(encoded)
            if (segment === undefined || !segment.startsWith(namePrefix)) continue
            items.push({ sortKey: isDir ? `${base}${segment}/` : `${base}${segment}`, dir: isDir, name: e.name })
          }
          items.sort((a, b) => compareKeys(a.sortKey, b.sortKey))
          for (const item of items) {
            if (item.dir) {
              const beforeStart = startAfter !== undefined && compareKeys(item.sortKey, startAfter) < 0 &&
                !startAfter.startsWith(item.sortKey)
              if (beforeStart || builder.skips(item.sortKey)) continue
              if (!(yield* walk(path.join(dir, item.name), item.sortKey, ""))) return false
            } else if (!builder.offer(item.sortKey, { key: item.sortKey, file: path.join(dir, item.name) })) {
              return false
            }
          }
          return true
        })

      yield* walk(startDir, baseKey, partial).pipe(Effect.mapError(toStorageError("list", prefix)))
      // Objects deleted between the walk and this read are left out, as a later LIST would.
      const metas = yield* Effect.forEach(builder.objects, (f) => readHeader("list", f.key, f.file), { concurrency: 16 })
      const page: ListPage = {
        objects: metas.flatMap((m) => (Option.isSome(m) ? [m.value] : [])),
        commonPrefixes: builder.commonPrefixes,
        nextContinuationToken: builder.nextContinuationToken
      }
      return page
    })

    const capabilities: StorageCapabilities = {
      versioning: "off",
      conditionalWrites: true,
      conditionalDelete: true,
      ifMatchEtag: "not-applicable",
      clock: "local"
    }

    const service: StorageService = {
      get,
      head,
      put,
      delete: del,
      deleteIfMatch,
      deleteMany,
      list,
      listAll: listAllFromList<StorageReadError>(list),
      listVersions: () => Effect.succeed([]),
      getVersion: () => Effect.succeed(Option.none()),
      capabilities: Effect.succeed(capabilities),
      versioning: Effect.succeed(capabilities.versioning),
      dateSamples: Stream.empty
    }
    return service
  })

/**
 * A {@link Storage} on the directory `directory` (created if missing).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  directory: string,
  options?: FileStorageOptions
): Layer.Layer<Storage, StorageUnavailable | AccessDenied> => Layer.effect(Storage, make(directory, options))

/**
 * Namespace-style access: `FileStorage.layer(dir)`, `FileStorage.make(dir)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const FileStorage = { make, layer } as const
