/**
 * Headless Chromium for the dashboard's browser suites (Debian's `chromium`, driven by
 * playwright-core): where it is, whether it is there, and a persistent context for a scope.
 * Screenshots go to test-results/ (a CI artifact; the directory is git-ignored).
 *
 * @module
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect } from "effect"
import type { BrowserContext, Page } from "playwright-core"

export const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
export const available = existsSync(executablePath)
/** Under CI=true a missing Chromium is a failure, not a skip (.ci/run installs it). */
export const inCI = process.env["CI"] === "true"
export const artifacts = resolve("test-results")

/** A browser context for the current scope (closed, and its profile removed, at the end). */
export const launch = Effect.acquireRelease(
  Effect.promise(async () => {
    const { chromium } = await import("playwright-core")
    const userDataDir = mkdtempSync(join(tmpdir(), "buquet-chromium-"))
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ],
      viewport: { width: 1280, height: 900 }
    })
    return { context, userDataDir }
  }),
  ({ context, userDataDir }) =>
    Effect.promise(async () => {
      await context.close()
      rmSync(userDataDir, { recursive: true, force: true })
    })
).pipe(Effect.map(({ context }): BrowserContext => context))

/** A step of a browser script, as an Effect. */
export const step = <A>(f: () => Promise<A>) => Effect.promise(f)

/**
 * A new page of a fresh context that records what a suite checks on every page: the dialogs it
 * opened (dismissed) and every request that left `origin`. Makes the screenshot directory.
 */
export const watchedPage = (origin: string) =>
  Effect.gen(function*() {
    const context = yield* launch
    const page: Page = yield* step(() => context.newPage())
    const dialogs: Array<string> = []
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message())
      void dialog.dismiss()
    })
    const external: Array<string> = []
    page.on("request", (r) => {
      if (!r.url().startsWith(origin)) external.push(r.url())
    })
    mkdirSync(artifacts, { recursive: true })
    return { context, page, dialogs, external }
  })
