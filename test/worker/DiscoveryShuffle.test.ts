/**
 * Discovery's shuffle is Random.shuffle's permutation with the same draws: a seeded run (the
 * simulator's) takes the same path as before it replaced Random.shuffle, and what the Random
 * gives next is the same too.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, FastCheck as fc, Random } from "effect"
import { shuffle } from "../../src/programs/worker/Discovery.js"

describe("Discovery.shuffle", () => {
  it.prop(
    "the same order and the same next draw as Random.shuffle, for any seed and list",
    [fc.integer(), fc.array(fc.integer(), { maxLength: 300 })],
    ([seed, items]) => {
      const run = <A>(self: Effect.Effect<A>) =>
        Effect.runSync(Effect.zip(self, Random.nextInt).pipe(Effect.withRandom(Random.make(seed))))
      const [ours, nextAfterOurs] = run(shuffle(items))
      const [theirs, nextAfterTheirs] = run(Effect.map(Random.shuffle(items), Chunk.toArray))
      expect(ours).toEqual(theirs)
      expect(nextAfterOurs).toBe(nextAfterTheirs)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it("the same order with a Random that is not Effect's own generator (drawn effect by effect)", () => {
    const items = Array.from({ length: 40 }, (_, i) => i)
    const fixed = Random.fixed([0.91, 0.13, 0.5, 0.77, 0.02, 0.64])
    const ours = Effect.runSync(shuffle(items).pipe(Effect.withRandom(fixed)))
    const theirs = Effect.runSync(Effect.map(Random.shuffle(items), Chunk.toArray).pipe(Effect.withRandom(Random.fixed([0.91, 0.13, 0.5, 0.77, 0.02, 0.64]))))
    expect(ours).toEqual(theirs)
    expect(ours).not.toEqual(items)
  })

  it("permutes: every element once", () => {
    const items = Array.from({ length: 50 }, (_, i) => i)
    const shuffled = Effect.runSync(shuffle(items).pipe(Effect.withRandom(Random.make(7))))
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items)
    expect(shuffled).not.toEqual(items)
  })
})
