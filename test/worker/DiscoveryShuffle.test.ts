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

  it("permutes: every element once", () => {
    const items = Array.from({ length: 50 }, (_, i) => i)
    const shuffled = Effect.runSync(shuffle(items).pipe(Effect.withRandom(Random.make(7))))
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items)
    expect(shuffled).not.toEqual(items)
  })
})
