/**
 * The lean S3 path's XML (src/layers/S3Xml.ts): ListObjectsV2 pages as RGW and AWS write them are
 * read field by field; a malformed page is refused with an error that names the request and
 * what is wrong, never read around. DeleteObjects answers give every key not deleted; the
 * request body escapes keys. S3Storage maps these errors to `InvalidResponse` (see
 * test/storage/S3Storage.test.ts, scripted server).
 *
 * @module
 */
import { describe, expect, it } from "vitest"
import * as S3Xml from "../../src/layers/S3Xml.js"

const page = (inner: string, truncated = "false") =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
  `<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${truncated}</IsTruncated>${inner}</ListBucketResult>`

const object = (key: string, extra = "") =>
  `<Contents><Key>${key}</Key><LastModified>2026-12-07T08:00:01.123Z</LastModified><ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag>` +
  `<Size>17</Size><StorageClass>STANDARD</StorageClass><Owner><ID>o</ID><DisplayName>d</DisplayName></Owner>${extra}</Contents>`

const what = "ListObjectsV2 of \"p/\""
const refusal = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(S3Xml.S3XmlError)
    return (e as Error).message
  }
  throw new Error("accepted")
}

describe("ListObjectsV2 pages", () => {
  it("reads keys (entities decoded), ETags, sizes, times, common prefixes and the continuation token", () => {
    const xml = page(
      object("p/a&amp;b &lt;1&gt; &#233;&#x1F600;") + object("p/c") +
        `<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes><NextContinuationToken>1/AbC+dEf==</NextContinuationToken>`,
      "true"
    )
    const read = S3Xml.listObjectsV2(xml, "p/", what)
    expect(read.objects.map((o) => o.key)).toEqual(["p/a&b <1> é😀", "p/c"])
    expect(read.objects[0]).toMatchObject({ etag: "\"0cc175b9c0f1b6a831c399e269772661\"", size: 17 })
    expect(read.objects[0]!.lastModified.toISOString()).toBe("2026-12-07T08:00:01.123Z")
    expect(read.commonPrefixes).toEqual(["p/d/"])
    expect(read.isTruncated).toBe(true)
    expect(read.nextContinuationToken).toBe("1/AbC+dEf==")
  })

  it("an empty, final page", () => {
    expect(S3Xml.listObjectsV2(page(""), "p/", what)).toEqual({ objects: [], commonPrefixes: [], isTruncated: false, nextContinuationToken: undefined })
    // a self-closing root (no fields) is still refused: IsTruncated is required
    expect(refusal(() => S3Xml.listObjectsV2("<ListBucketResult/>", "p/", what))).toMatch(/lacks <IsTruncated>/)
  })

  it("a malformed page is refused with the request and the fault named", () => {
    const cases: ReadonlyArray<readonly [string, RegExp]> = [
      [page(object("p/a"), "true"), /truncated page has no continuation token/],
      [page(object("p/a"), "yes"), /<IsTruncated> is "yes"/],
      [page(object("p/a")).replace("<IsTruncated>false</IsTruncated>", ""), /lacks <IsTruncated>/],
      [page("<IsTruncated>false</IsTruncated>"), /2 <IsTruncated> elements/],
      [page(object("q/a")), /"q\/a": the key is not under the prefix "p\/"/],
      [page(object("p/a").replace("<Size>17</Size>", "<Size>-1</Size>")), /<Size> is "-1"/],
      [page(object("p/a").replace("<Size>17</Size>", "")), /lacks <Size>/],
      [page(object("p/a").replace(/<ETag>.*<\/ETag>/, "")), /lacks <ETag>/],
      [page(object("p/a").replace("2026-12-07T08:00:01.123Z", "yesterday")), /<LastModified> is "yesterday"/],
      [page("<Contents><LastModified>2026-12-07T08:00:01Z</LastModified></Contents>"), /lacks <Key>/],
      [page("<CommonPrefixes><Prefix>x/</Prefix></CommonPrefixes>"), /common prefix "x\/" is not below/],
      [page(object("p/a")).replace("</ListBucketResult>", ""), /<ListBucketResult> is never closed/],
      [page(object("p/a")).replace("</Key>", "</Kee>"), /<\/Kee> closes <Key>/],
      [page(object("p/a&nbsp;")), /unknown entity &nbsp;/],
      [page(object("p/a & b")), /an '&' without an entity/],
      [page(object("p/a")) + "<More/>", /more than one root element/],
      [page(object("p/a")) + "trailing", /text outside the root element/],
      [page(object("p/a <b")), /malformed markup/],
      ["<Error><Code>InternalError</Code></Error>", /the answer is <Error>, not <ListBucketResult>/],
      ["", /no root element/],
      ["<html><body>proxy error</body></html>", /not <ListBucketResult>/]
    ]
    for (const [xml, fault] of cases) {
      const message = refusal(() => S3Xml.listObjectsV2(xml, "p/", what))
      expect(message).toContain(what)
      expect(message).toMatch(fault)
    }
  })
})

describe("the parser", () => {
  // plain `<Name>` / `</Name>` tags take a path without the regular expression (the common case);
  // the same document with a space in every tag goes through it: both must read the same tree
  it("plain tags and tags with spaces read the same tree; a closing tag must name the open one exactly", () => {
    const plain = page(object("p/a") + object("p/b:c.d-e_f") + `<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>`)
    const spaced = plain.replace(/<(\/?)([A-Za-z_][\w.:-]*)>/g, "<$1$2 >")
    expect(spaced).not.toBe(plain)
    expect(S3Xml.parse(plain, what)).toEqual(S3Xml.parse(spaced, what))
    expect(S3Xml.listObjectsV2(plain, "p/", what)).toEqual(S3Xml.listObjectsV2(spaced, "p/", what))
    for (const closer of ["</Ke>", "</Keys>", "</key>"]) {
      expect(refusal(() => S3Xml.parse(page(object("p/a")).replace("</Key>", closer), what))).toContain(`${closer} closes <Key>`)
    }
    expect(refusal(() => S3Xml.parse("</A>", what))).toMatch(/<\/A> closes nothing/)
    expect(refusal(() => S3Xml.parse("<A></A><B>", what))).toMatch(/more than one root element/)
    expect(refusal(() => S3Xml.parse("<1A></1A>", what))).toMatch(/malformed markup/)
  })
})

describe("DeleteObjects", () => {
  it("the request body escapes keys and carries version ids", () => {
    const body = S3Xml.deleteRequest([{ Key: "a&b<c>\"d'" }, { Key: "k", VersionId: "v1" }])
    const root = S3Xml.parse(body, "body")
    expect(root.name).toBe("Delete")
    const objects = root.children.filter((c) => c.name === "Object")
    expect(objects.map((o) => o.children.map((c) => [c.name, c.text]))).toEqual([[["Key", "a&b<c>\"d'"]], [["Key", "k"], ["VersionId", "v1"]]])
    expect(root.children.find((c) => c.name === "Quiet")?.text).toBe("true")
  })

  it("the answer gives every key not deleted; an error naming a key not asked for is refused", () => {
    const requested = new Set(["p/a", "p/b", "p/c"])
    const xml = `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Deleted><Key>p/c</Key></Deleted>` +
      `<Error><Key>p/a</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>` +
      `<Error><Key>p/b</Key><VersionId>v9</VersionId><Code>InternalError</Code><Message>try again</Message></Error></DeleteResult>`
    expect(S3Xml.deleteResult(xml, requested, "DeleteObjects")).toEqual([
      { key: "p/a", versionId: undefined, code: "AccessDenied", message: "Access Denied" },
      { key: "p/b", versionId: "v9", code: "InternalError", message: "try again" }
    ])
    expect(S3Xml.deleteResult("<DeleteResult/>", requested, "DeleteObjects")).toEqual([])
    expect(refusal(() => S3Xml.deleteResult(xml.replace("<Key>p/a</Key>", "<Key>p/z</Key>"), requested, "DeleteObjects")))
      .toMatch(/names "p\/z", which was not in the request/)
    expect(refusal(() => S3Xml.deleteResult(xml.replace("<Code>AccessDenied</Code>", ""), requested, "DeleteObjects"))).toMatch(/lacks <Code>/)
    expect(refusal(() => S3Xml.deleteResult("<ListBucketResult/>", requested, "DeleteObjects"))).toMatch(/not <DeleteResult>/)
  })
})

describe("bucket versioning and error bodies", () => {
  it("Enabled, Suspended, never enabled; anything else is refused", () => {
    const v = (inner: string) => `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}</VersioningConfiguration>`
    expect(S3Xml.versioningStatus(v("<Status>Enabled</Status>"), "GetBucketVersioning")).toBe("Enabled")
    expect(S3Xml.versioningStatus(v("<Status>Suspended</Status><MfaDelete>Disabled</MfaDelete>"), "GetBucketVersioning")).toBe("Suspended")
    expect(S3Xml.versioningStatus(v(""), "GetBucketVersioning")).toBeUndefined()
    expect(S3Xml.versioningStatus("<VersioningConfiguration/>", "GetBucketVersioning")).toBeUndefined()
    expect(refusal(() => S3Xml.versioningStatus(v("<Status>On</Status>"), "GetBucketVersioning"))).toMatch(/<Status> is "On"/)
  })

  it("an error body's code and message; anything else gives neither", () => {
    expect(S3Xml.errorBody("<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>a &amp; b</Message></Error>"))
      .toEqual({ code: "SlowDown", message: "a & b" })
    expect(S3Xml.errorBody("<html>bad gateway</html>")).toEqual({ code: undefined, message: undefined })
    expect(S3Xml.errorBody("not xml <")).toEqual({ code: undefined, message: undefined })
  })
})
