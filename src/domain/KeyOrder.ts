/**
 * Key order: S3 lists keys by the bytes of their UTF-8 encoding. Every store, listing and report
 * that sorts keys uses this one comparison, so they agree with the bucket.
 *
 * @module
 */

/**
 * Compares two keys in S3's order: by the bytes of their UTF-8 encoding (= Unicode code point
 * order), never by locale. JavaScript's `<` compares UTF-16 code units, which differs only when a
 * surrogate meets a character in U+E000–U+FFFF; the shift below fixes exactly that case.
 */
export const compareKeys = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codeUnitRank(x) - codeUnitRank(y)
  }
  return a.length - b.length
}

const codeUnitRank = (c: number): number => (c < 0xd800 ? c : c < 0xe000 ? c + 0x2000 : c - 0x800)
