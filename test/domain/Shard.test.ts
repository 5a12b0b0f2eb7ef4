/**
 * Shard and time-bucket arithmetic (design.md §5.1), for every prefix length, and the index keys
 * built from them.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { leaseKey, parseIndexKey, readyKey } from "../../src/domain/Keys.js"
import {
  allShards,
  bucketOf,
  bucketStartMillis,
  formatBucket,
  isShard,
  ShardPrefixLen,
  shardOf
} from "../../src/domain/Shard.js"

const prefixLen = fc.integer({ min: 1, max: 4 })
const taskId = fc.uuid().map((s) => s.toLowerCase())
const shardSets = new Map([1, 2, 3, 4].map((len) => [len, new Set(allShards(len))] as const))
/** Buckets that fit the 10-digit key width (until about the year 20983). */
const bucket = fc.integer({ min: 0, max: 9_999_999_999 })

describe("shards", () => {
  it.prop("shardOf(id) is one of allShards(len), of length len, a prefix of the hyphen-less id", [taskId, prefixLen], ([id, len]) => {
    const shard = shardOf(id, len)
    expect(shard).toHaveLength(len)
    expect(shardSets.get(len)!.has(shard)).toBe(true)
    expect(id.replace(/-/g, "").startsWith(shard)).toBe(true)
    expect(isShard(shard, len)).toBe(true)
  })

  it.prop("upper-case ids land in the same shard as lower-case ones", [taskId, prefixLen], ([id, len]) => {
    expect(shardOf(id.toUpperCase(), len)).toBe(shardOf(id, len))
  })

  it.prop("a longer prefix refines a shorter one", [taskId], ([id]) => {
    for (let len = 2; len <= 4; len++) expect(shardOf(id, len).startsWith(shardOf(id, len - 1))).toBe(true)
  })

  for (const len of [1, 2, 3, 4]) {
    it(`allShards(${len}) has 16^${len} distinct shards, sorted bytewise`, () => {
      const shards = allShards(len)
      expect(shards).toHaveLength(16 ** len)
      expect(new Set(shards).size).toBe(shards.length)
      for (let i = 1; i < shards.length; i++) expect(shards[i - 1]! < shards[i]!).toBe(true)
      expect(shards[0]).toBe("0".repeat(len))
      expect(shards[shards.length - 1]).toBe("f".repeat(len))
      expect(shards.every((s) => isShard(s, len))).toBe(true)
    })
  }

  it("isShard refuses the wrong length, upper case and non-hex", () => {
    expect(isShard("a", 2)).toBe(false)
    expect(isShard("A", 1)).toBe(false)
    expect(isShard("g", 1)).toBe(false)
    expect(isShard("", 1)).toBe(false)
  })

  it("the prefix length is an integer from 1 to 4", () => {
    const decode = Schema.decodeUnknownEither(ShardPrefixLen)
    for (const ok of [1, 2, 3, 4]) expect(decode(ok)._tag).toBe("Right")
    for (const bad of [0, 5, 1.5, -1, "1"]) expect(decode(bad)._tag).toBe("Left")
  })
})

describe("time buckets", () => {
  it("epoch edges: 0, the minute boundary, negatives clamp to bucket 0", () => {
    expect(bucketOf(0)).toBe(0)
    expect(bucketOf(59_999)).toBe(0)
    expect(bucketOf(60_000)).toBe(1)
    expect(bucketOf(119_999)).toBe(1)
    expect(formatBucket(bucketOf(0))).toBe("0000000000")
    expect(formatBucket(bucketOf(-1))).toBe("0000000000")
    expect(formatBucket(bucketOf(-86_400_000))).toBe("0000000000")
    expect(formatBucket(-5)).toBe("0000000000")
  })

  it("matches the reference's example: 2024-01-15T10:30:00Z is bucket 0028421910", () => {
    const t = Date.parse("2024-01-15T10:30:00Z")
    expect(formatBucket(bucketOf(t))).toBe("0028421910")
    expect(formatBucket(bucketOf(t - 1))).toBe("0028421909")
    expect(formatBucket(bucketOf(t + 59_999))).toBe("0028421910")
    expect(bucketStartMillis(28_421_910)).toBe(t)
  })

  it("far future: year 9999 still fits in 10 digits", () => {
    const t = Date.parse("9999-12-31T23:59:59.999Z")
    expect(formatBucket(bucketOf(t))).toBe("4223371679")
    expect(formatBucket(9_999_999_999)).toBe("9999999999")
  })

  it.prop("formatBucket is 10 digits and sorts like the numbers", [bucket, bucket], ([a, b]) => {
    const fa = formatBucket(a)
    const fb = formatBucket(b)
    expect(fa).toMatch(/^\d{10}$/)
    expect(Number(fa)).toBe(a)
    expect(Math.sign(fa < fb ? -1 : fa > fb ? 1 : 0)).toBe(Math.sign(a - b))
  })

  it.prop(
    "bucketOf is monotonic and each instant lies in its bucket",
    [fc.integer({ min: -1e12, max: 4e14 }), fc.integer({ min: 0, max: 1e12 })],
    ([t, dt]) => {
      expect(bucketOf(t + dt)).toBeGreaterThanOrEqual(bucketOf(t))
      expect(formatBucket(bucketOf(t + dt)) >= formatBucket(bucketOf(t))).toBe(true)
      if (t >= 0) {
        expect(bucketStartMillis(bucketOf(t))).toBeLessThanOrEqual(t)
        expect(t).toBeLessThan(bucketStartMillis(bucketOf(t) + 1))
      }
    }
  )
})

describe("index keys", () => {
  it.prop("parseIndexKey round-trips readyKey and leaseKey", [taskId, prefixLen, bucket], ([id, len, b]) => {
    const shard = shardOf(id, len)
    expect(parseIndexKey(readyKey(shard, b, id))).toMatchObject({ kind: "ready", shard, bucket: b, taskId: id })
    expect(parseIndexKey(leaseKey(shard, b, id))).toMatchObject({ kind: "leases", shard, bucket: b, taskId: id })
  })

  it.prop("index keys of one shard sort by bucket", [taskId, taskId, bucket, bucket], ([a, b, ba, bb]) => {
    fc.pre(ba !== bb)
    const ka = readyKey("0", ba, a)
    const kb = readyKey("0", bb, b)
    expect(ka < kb).toBe(ba < bb)
  })

  it("parseIndexKey refuses other keys", () => {
    const id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    for (
      const key of [
        `tasks/0/${id}.json`,
        `ready/0/28421910/${id}`,
        `ready/00000/0028421910/${id}`,
        `ready/0/0028421910/${id.toUpperCase()}`,
        `ready/0/0028421910/${id}/extra`,
        `leases/G/0028421910/${id}`,
        ""
      ]
    ) expect(parseIndexKey(key), key).toBeUndefined()
  })
})
