/**
 * The dashboard's protections:
 * - binding: loopback by default; any other address only with an access token;
 * - access token (when set): `Authorization: Bearer <token>`, or the `buquet_token` cookie that a
 *   first visit with `?token=<token>` sets (HttpOnly, SameSite=Strict);
 * - DNS rebinding: without a token, only requests whose `Host` is a loopback name are served;
 * - CSRF: a per-process secret token, embedded in every form (`_csrf`) and page (`<meta>`), and
 *   required on every POST (form field or `X-CSRF-Token` header); missing or wrong → 403. Besides,
 *   a state-changing request that a browser says comes from another site is refused (403);
 * - the token cookie is `Secure` behind a TLS proxy, and its redirect never leaves the site.
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

/**
 * Why a state-changing request must be refused as cross-site, or undefined when it may proceed
 * (the CSRF token is checked besides). Browsers say where a request comes from: `Sec-Fetch-Site`
 * (only `same-origin`, or `none` for a user's own navigation, pass), else `Origin`, which must name
 * this host (the `Host` header). A request with neither is not from a browser (curl, scripts): it
 * passes here and still needs the token.
 */
export const crossSiteReason = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const site = headers["sec-fetch-site"]?.trim().toLowerCase()
  if (site !== undefined && site !== "") {
    return site === "same-origin" || site === "none" ? undefined : `the browser says it comes from another site (Sec-Fetch-Site: ${site})`
  }
  const origin = headers["origin"]?.trim()
  if (origin === undefined || origin === "") return undefined
  let originHost: string | undefined
  try {
    originHost = origin === "null" ? undefined : new URL(origin).host
  } catch {
    originHost = undefined
  }
  const host = headers["host"]?.trim().toLowerCase()
  return originHost !== undefined && host !== undefined && originHost.toLowerCase() === host
    ? undefined
    : `it comes from another origin (Origin: ${origin.slice(0, 100)})`
}

/**
 * Whether the browser reached the dashboard over TLS: the dashboard serves plain HTTP, so TLS is a
 * terminating proxy in front that says so (`X-Forwarded-Proto: https` or `Forwarded: proto=https`).
 * Decides the token cookie's `Secure` flag (a wrong "yes" only keeps the cookie off plain http).
 */
export const isTls = (headers: Readonly<Record<string, string | undefined>>): boolean =>
  headers["x-forwarded-proto"]?.split(",")[0]?.trim().toLowerCase() === "https" ||
  /(?:^|[;,\s])proto="?https"?(?:$|[;,\s])/i.test(headers["forwarded"] ?? "")

/**
 * The same-site `Location` for a request target with the token taken out: its path and query only,
 * with leading slashes and backslashes folded into one `/` (an absolute-form target such as
 * `http://x//evil.example/` must never become a protocol-relative redirect).
 */
export const sameSiteLocation = (url: URL): string => `/${url.pathname.replace(/^[/\\]+/, "")}${url.search}`
