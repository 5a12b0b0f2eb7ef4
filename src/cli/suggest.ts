/**
 * "Did you mean": the known name closest to a misspelled one (edit distance), for the
 * unknown-command message.
 *
 * @module
 */

/** Levenshtein distance with adjacent transpositions counted as one edit. */
const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** The candidate closest to `word` (a prefix, or within a third of its length in edits), if any is close. */
export const closest = (word: string, candidates: ReadonlyArray<string>): string | undefined => {
  const w = word.toLowerCase()
  const prefixed = candidates.filter((c) => w.length >= 2 && c.startsWith(w))
  if (prefixed.length === 1) return prefixed[0]
  const scored = candidates.map((c) => ({ c, d: distance(w, c) })).sort((x, y) => x.d - y.d)
  const best = scored[0]
  return best !== undefined && best.d <= Math.max(1, Math.floor(w.length / 3)) ? best.c : undefined
}
