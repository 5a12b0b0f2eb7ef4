/**
 * Task ids as people type them: a full UUID, or a unique prefix of at least 6 characters (as git
 * does). Since a task's shard is its id's leading hex characters, a prefix names its shard, so the
 * resolution costs one LIST on `tasks/{shard}/{prefix}` (at most {@link candidateLimit} + 1 keys).
 *
 * @module
 */
import { Data, Effect } from "effect"
import { parseTaskKey, taskShardPrefix } from "../domain/Keys.js"
import { shardOf } from "../domain/Shard.js"
import { Storage } from "../services/Storage.js"

/** The shortest prefix accepted: 6 hex characters (16.7 million values). */
export const minPrefixLength = 6

/** How many candidates an ambiguous prefix lists. */
export const candidateLimit = 10

const fullId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const uuidShape = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"

/** How a typed id resolved: one task, none, several, or text that is no id prefix at all. */
export type Resolution = Data.TaggedEnum<{
  Found: { readonly id: string }
  NotFound: { readonly prefix: string }
  Ambiguous: { readonly prefix: string; readonly candidates: ReadonlyArray<string>; readonly more: boolean }
  Invalid: { readonly text: string; readonly message: string }
}>

/** Constructors of {@link Resolution}. */
export const Resolution = Data.taggedEnum<Resolution>()

/**
 * Whether `text` (lower-cased) is a prefix of a UUID's canonical form: hex digits with hyphens
 * exactly where a UUID has them.
 */
const isUuidPrefix = (text: string): boolean =>
  text.length <= uuidShape.length &&
  [...text].every((c, i) => (uuidShape[i] === "-" ? c === "-" : /[0-9a-f]/.test(c)))

/** Resolves a full id or a unique prefix of one against the tasks of the queue's shards. */
export const resolveTaskId = Effect.fn("TaskIdPrefix.resolve")(function*(text: string, shardPrefixLen: number) {
  const prefix = text.trim().toLowerCase()
  if (fullId.test(prefix)) return Resolution.Found({ id: prefix })
  if (!isUuidPrefix(prefix)) {
    return Resolution.Invalid({
      text,
      message: `${JSON.stringify(text.slice(0, 80))} is not a task id: give the UUID or a unique prefix of it (at least ${minPrefixLength} characters)`
    })
  }
  if (prefix.length < minPrefixLength) {
    return Resolution.Invalid({
      text,
      message: `the task id prefix "${prefix}" is too short: give at least ${minPrefixLength} characters (or the whole UUID)`
    })
  }
  const storage = yield* Storage
  // tasks/{shard}/{id}.json: the key prefix up to the typed characters
  const page = yield* storage.list(taskShardPrefix(shardOf(prefix, shardPrefixLen)) + prefix, { maxKeys: candidateLimit + 1 })
  const ids = page.objects.flatMap((o) => {
    const parsed = parseTaskKey(o.key)
    return parsed !== undefined && fullId.test(parsed.taskId) ? [parsed.taskId] : []
  })
  if (ids.length === 0) return Resolution.NotFound({ prefix })
  if (ids.length === 1) return Resolution.Found({ id: ids[0]! })
  return Resolution.Ambiguous({
    prefix,
    candidates: ids.slice(0, candidateLimit),
    more: ids.length > candidateLimit || page.nextContinuationToken !== undefined
  })
})

/**
 * The short form of each id, as people type it back (git's abbreviated hashes): the shortest
 * prefix of at least {@link minPrefixLength} characters that no other id of `ids` shares. Among
 * the ids a listing holds, each short form resolves (with {@link resolveTaskId}) to its task; the
 * dashboard shows them and links the full id.
 *
 * @since 0.1.0
 * @category utils
 */
export const shortIds = (ids: Iterable<string>): ReadonlyMap<string, string> => {
  const sorted = [...new Set(ids)].sort()
  const common = (a: string | undefined, b: string): number => {
    if (a === undefined) return 0
    let n = 0
    while (n < a.length && n < b.length && a[n] === b[n]) n++
    return n
  }
  const out = new Map<string, string>()
  sorted.forEach((id, i) => {
    // in sorted order, the longest prefix shared with any other id is shared with a neighbour
    const shared = Math.max(common(sorted[i - 1], id), common(sorted[i + 1], id))
    const length = Math.max(minPrefixLength, shared + 1)
    // never end on a hyphen: "0123abcd-" reads as cut off; take the next character too
    out.set(id, id.slice(0, id[length - 1] === "-" ? length + 1 : length))
  })
  return out
}
