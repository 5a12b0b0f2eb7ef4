/**
 * What `npm pack` ships (issue 16 item 17): the licence, the executable, and every file the shipped
 * README links to, so no link in the installed package's docs points at a file it lacks.
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
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
  it("ships LICENSE, the executable, and every file its README links to", async () => {
    const files = await packedFiles()
    expect(files).toContain("LICENSE")
    expect(files).toContain("README.md")
    expect(files).toContain("bin/buquet.js")
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!)
      .filter((l) => !/^[a-z]+:/i.test(l) && !l.startsWith("#"))
      .map((l) => l.replace(/#.*$/, "").replace(/^\.\//, ""))
    expect(links.length).toBeGreaterThan(0)
    for (const link of links) {
      expect(files.some((f) => f === link || f.startsWith(link.endsWith("/") ? link : `${link}/`)), `README links to ${link}`).toBe(true)
    }
  }, 150_000)
})
