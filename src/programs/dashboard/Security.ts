/**
 * The dashboard's protections:
 * - binding: loopback by default; any other address only with an access token;
 * - access token (when set): `Authorization: Bearer <token>`, or the `buquet_token` cookie that a
 *   first visit with `?token=<token>` sets (HttpOnly, SameSite=Strict);
 * - DNS rebinding: without a token, only requests whose `Host` is a loopback name are served;
 * - CSRF: a per-process secret token, embedded in every form (`_csrf`) and page (`<meta>`), and
 *   required on every POST (form field or `X-CSRF-Token` header); missing or wrong → 403.
 *
 * @module
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import { isIP } from "node:net"
import { Schema } from "effect"

/** The dashboard refused to start (e.g. a non-loopback address without a token). */
export class DashboardRefused extends Schema.TaggedError<DashboardRefused>()("DashboardRefused", {
  host: Schema.String,
  message: Schema.String
}) {}

/** Whether `host` is a loopback address or name. */
export const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true
  if (isIP(h) === 4) return h.startsWith("127.")
  if (h.startsWith("::ffff:")) return h.slice("::ffff:".length).startsWith("127.")
  return false
}

/** The reason binding to `host` without a token is refused, or undefined when it is allowed. */
export const checkBinding = (host: string, token: string | undefined): DashboardRefused | undefined =>
  isLoopback(host) || (token !== undefined && token.length > 0)
    ? undefined
    : new DashboardRefused({
      host,
      message: `refusing to serve the dashboard on ${host} without an access token: anyone who can reach ` +
        `that address could cancel, replay and archive tasks. Pass a token (buquet dashboard --token <secret>, ` +
        `or BUQUET_DASHBOARD_TOKEN), or bind to 127.0.0.1 (the default) and reach it through an SSH tunnel`
    })

/** Minimum token length we accept for a non-loopback binding. */
export const minTokenLength = 16

/** Compares two secrets in constant time. */
export const sameSecret = (a: string | undefined, b: string): boolean => {
  if (a === undefined) return false
  const x = Buffer.from(a, "utf8")
  const y = Buffer.from(b, "utf8")
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The name of the access-token cookie. */
export const tokenCookie = "buquet_token"

/** The per-process secrets. */
export interface Secrets {
  /** Required on every POST. */
  readonly csrf: string
  /** Required on every request when set. */
  readonly token: string | undefined
}

/** Fresh per-process secrets (the CSRF token is random; restart = new token). */
export const makeSecrets = (token: string | undefined): Secrets => ({
  csrf: randomBytes(32).toString("base64url"),
  token: token === undefined || token.length === 0 ? undefined : token
})

/** Whether a request's `Host` header names a loopback host (DNS-rebinding guard for token-less dashboards). */
export const isLoopbackHostHeader = (hostHeader: string | undefined): boolean => {
  if (hostHeader === undefined) return false
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim())
  return m !== null && isLoopback(m[1]!)
}

/** Whether the request carries the access token (bearer header or cookie). */
export const hasToken = (
  secrets: Secrets,
  authorization: string | undefined,
  cookies: Readonly<Record<string, string>>
): boolean => {
  if (secrets.token === undefined) return true
  const bearer = authorization !== undefined && /^Bearer /i.test(authorization) ? authorization.slice(7).trim() : undefined
  return sameSecret(bearer, secrets.token) || sameSecret(cookies[tokenCookie], secrets.token)
}
