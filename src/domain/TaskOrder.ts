/**
 * The orders a task listing knows, and the one comparison of each: `buquet list --sort`, the
 * Queue's `list`, and the dashboard's task page all sort with {@link compareTasks}, so they agree.
 *
 * @module
 */
import { DateTime } from "effect"
import { compareKeys } from "./KeyOrder.js"

/**
 * The orders of a task listing: `created` (newest first, the CLI's and the dashboard's default),
 * `created-asc` (oldest first), `updated` (most recently changed first), `key` (storage order:
 * shard, then id).
 *
 * @since 0.1.0
 * @category models
 */
export const listSorts = ["created", "created-asc", "updated", "key"] as const

/**
 * One of {@link listSorts}.
 *
 * @since 0.1.0
 * @category models
 */
export type ListSort = typeof listSorts[number]

/**
 * What a sort compares: the task's id and shard, and its creation and update times.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sortable {
  readonly id: string
  readonly shard: string
  readonly createdAt: DateTime.Utc
  readonly updatedAt: DateTime.Utc
}

/**
 * The time a time-based sort orders by (`updated`: the last change; otherwise the creation).
 *
 * @since 0.1.0
 * @category utils
 */
export const sortMillis = (sort: ListSort, task: Pick<Sortable, "createdAt" | "updatedAt">): number =>
  DateTime.toEpochMillis(sort === "updated" ? task.updatedAt : task.createdAt)

/**
 * Compares two sort positions (a time and an id) in `sort`'s order; equal times fall back to the
 * id, so the order is total and a cursor (time, id) names one place in it.
 *
 * @since 0.1.0
 * @category utils
 */
export const comparePositions = (sort: Exclude<ListSort, "key">) =>
(a: { readonly millis: number; readonly id: string }, b: { readonly millis: number; readonly id: string }): number => {
  const byTime = sort === "created-asc" ? a.millis - b.millis : b.millis - a.millis
  return byTime !== 0 ? byTime : compareKeys(a.id, b.id)
}

/**
 * The comparison of `sort` over tasks (`key`: shard then id, as the bucket lists `tasks/`).
 *
 * @since 0.1.0
 * @category utils
 */
export const compareTasks = (sort: ListSort) => (a: Sortable, b: Sortable): number => {
  if (sort === "key") return compareKeys(a.shard, b.shard) || compareKeys(a.id, b.id)
  return comparePositions(sort)({ millis: sortMillis(sort, a), id: a.id }, { millis: sortMillis(sort, b), id: b.id })
}

/**
 * Whether `text` names one of {@link listSorts}.
 *
 * @since 0.1.0
 * @category utils
 */
export const isListSort = (text: string): text is ListSort => (listSorts as ReadonlyArray<string>).includes(text)
