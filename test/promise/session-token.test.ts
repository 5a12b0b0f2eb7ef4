/**
 * Temporary AWS credentials (STS, SSO, an assumed role) are three values: the session token must
 * travel with the key pair, as the `x-amz-security-token` header of every signed request, or the
 * bucket refuses them. Given to `connect({ credentials })` or in `AWS_SESSION_TOKEN` beside
 * `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` for the CLI, it was dropped on the way to the
 * signer. A local HTTP server stands in for the bucket and records what each request carried (it
 * answers 403; only the headers matter here).
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect } from "../../src/promise.js"
import { runCli } from "../cli/support.js"

const tokens: Array<string> = []
let server: Server
let endpoint = ""

beforeAll(async () => {
  server = createServer((req, res) => {
    tokens.push(String(req.headers["x-amz-security-token"] ?? "(none)"))
    req.resume()
    res.writeHead(403, { "content-type": "application/xml" })
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>recorded</Message></Error>`)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe("a session token travels with temporary credentials", () => {
  it("connect({ credentials: { sessionToken } }) signs with it", async () => {
    tokens.length = 0
    const attempt = async () => {
      const queue = await connect({
        bucket: "bkt",
        endpoint,
        region: "us-east-1",
        quiet: true,
        credentials: { accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token-from-connect" }
      })
      try {
        await queue.get("00000000-0000-4000-8000-000000000000")
      } finally {
        await queue.close()
      }
    }
    await expect(attempt()).rejects.toThrow()
    expect(tokens.length).toBeGreaterThan(0)
    expect(new Set(tokens)).toEqual(new Set(["token-from-connect"]))
  }, 60_000)

  it("the CLI signs with AWS_SESSION_TOKEN", async () => {
    tokens.length = 0
    const result = await runCli(["list"], {
      env: {
        S3_BUCKET: "bkt",
        S3_ENDPOINT: endpoint,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "ASIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_SESSION_TOKEN: "token-from-the-environment"
      }
    })
    expect(result.code, result.stderr).not.toBe(0)
    expect(tokens.length).toBeGreaterThan(0)
    expect(new Set(tokens)).toEqual(new Set(["token-from-the-environment"]))
  }, 150_000)
})
