/** The marker deletion rule shared by lease recovery and the sweeper (pure). */
import { describe, expect, it } from "@effect/vitest"
import { leaseKey, readyKey } from "../../src/domain/Keys.js"
import { bucketOf, bucketSeconds, bucketStartMillis } from "../../src/domain/Shard.js"
import { bucketMarginMillis, isDeletable, orphanGraceMillis, submitWindowMillis } from "../../src/domain/Markers.js"

const now = 1_800_000_000_000
const id = "0b7e1c2a-1111-4222-8333-444455556666"
const pastBucket = bucketOf(now - 10 * 60_000)
const futureBucket = bucketOf(now + 5 * 60_000)

describe("isDeletable", () => {
  it("a fresh marker of a task missing from the LIST is kept: the task may have been submitted (and claimed) since", () => {
    const missing = { exists: false } as const
    expect(isDeletable({ key: readyKey("a", bucketOf(now), id), lastModifiedMillis: now - 1000 }, missing, now)).toBe(false)
    expect(isDeletable({ key: leaseKey("a", futureBucket, id), lastModifiedMillis: now - 1000 }, missing, now)).toBe(false)
  })

  it("an orphan is deleted once older than the grace period, or (lease markers) once its bucket is over", () => {
    const missing = { exists: false } as const
    expect(isDeletable({ key: readyKey("a", pastBucket, id), lastModifiedMillis: now - orphanGraceMillis }, missing, now)).toBe(true)
    expect(isDeletable({ key: leaseKey("a", futureBucket, id), lastModifiedMillis: now - orphanGraceMillis }, missing, now)).toBe(true)
    expect(isDeletable({ key: leaseKey("a", pastBucket, id), lastModifiedMillis: now - 1000 }, missing, now)).toBe(true)
  })

  it("the marker a task needs is never deleted; another one only once its bucket is over", () => {
    const key = leaseKey("a", futureBucket, id)
    expect(isDeletable({ key, lastModifiedMillis: 0 }, { exists: true, needed: key }, now)).toBe(false)
    expect(isDeletable({ key, lastModifiedMillis: 0 }, { exists: true, needed: undefined }, now)).toBe(false)
    expect(isDeletable({ key: readyKey("a", pastBucket, id), lastModifiedMillis: 0 }, { exists: true, needed: undefined }, now)).toBe(true)
    expect(isDeletable({ key: "ready/nonsense", lastModifiedMillis: now }, { exists: true, needed: undefined }, now)).toBe(true)
  })

  it("a ready marker of a missing task is kept while a stalled submit may still create its task with it", () => {
    const missing = { exists: false } as const
    // Old, but its bucket is still open: a submit that built its task this minute may create it yet.
    expect(isDeletable({ key: readyKey("a", bucketOf(now), id), lastModifiedMillis: now - 10 * orphanGraceMillis }, missing, now)).toBe(false)
    // Its bucket ended, but not by more than the margin and the submit window.
    const justOver = bucketOf(now) - 1
    const endOfJustOver = bucketStartMillis(justOver) + bucketSeconds * 1000
    const readAt = endOfJustOver + bucketMarginMillis + submitWindowMillis
    const marker = { key: readyKey("a", justOver, id), lastModifiedMillis: readAt - orphanGraceMillis }
    expect(isDeletable(marker, missing, readAt - 1)).toBe(false)
    expect(isDeletable(marker, missing, readAt)).toBe(true)
    // Its bucket long over, but the marker is young (written late by a stalled submit): kept.
    expect(isDeletable({ key: readyKey("a", pastBucket, id), lastModifiedMillis: now - 1000 }, missing, now)).toBe(false)
  })
})
