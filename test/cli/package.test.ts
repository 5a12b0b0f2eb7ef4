/**
 * What `npm pack` ships (issue 16 item 17): the licence, the executable, and every file a shipped
 * Markdown document (README.md, BENCHMARKS.md, …) links to or shows as an image, so no link in the
 * installed package's docs points at a file it lacks.
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join, posix } from "node:path"
import { describe, expect, it } from "vitest"
import { root } from "./support.js"

const packedFiles = (): Promise<ReadonlyArray<string>> =>
  new Promise((resolve, reject) =>
    execFile("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, timeout: 120_000 }, (error, stdout) => {
      if (error !== null) return reject(error)
      resolve((JSON.parse(stdout) as ReadonlyArray<{ files: ReadonlyArray<{ path: string }> }>)[0]!.files.map((f) => f.path))
    })
  )

describe("the npm package", () => {
  it("ships LICENSE, the executable, and every file its docs link to", async () => {
    const files = await packedFiles()
    expect(files).toContain("LICENSE")
    expect(files).toContain("README.md")
    expect(files).toContain("bin/buquet.js")
    const docs = files.filter((f) => f.endsWith(".md"))
    expect(docs).toContain("BENCHMARKS.md")
    let checked = 0
    for (const doc of docs) {
      const text = readFileSync(join(root, doc), "utf8")
      // [text](target) and ![alt](target), relative targets only, resolved against the document
      const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!)
        .filter((l) => !/^[a-z]+:/i.test(l) && !l.startsWith("#"))
        .map((l) => posix.normalize(posix.join(posix.dirname(doc), l.replace(/#.*$/, ""))))
      for (const link of links) {
        checked++
        expect(files.some((f) => f === link || f.startsWith(link.endsWith("/") ? link : `${link}/`)), `${doc} links to ${link}`).toBe(true)
      }
    }
    expect(checked).toBeGreaterThan(0)
  }, 150_000)
})
