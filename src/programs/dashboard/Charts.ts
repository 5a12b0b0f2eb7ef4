/**
 * Inline SVG charts for the dashboard (no script, no assets from the internet). Labels go through
 * the escaping template; geometry is numbers only.
 *
 * @module
 */
import { html } from "./Html.js"
import type { Html } from "./Html.js"

/** One bar of a stacked bar chart: a label and one value per series. */
export interface Bar {
  readonly label: string
  readonly values: ReadonlyArray<number>
}

/** A series of a chart: its name (legend) and CSS colour. */
export interface Series {
  readonly name: string
  readonly color: string
}

/** Options of {@link stackedBars}. */
export interface BarChartOptions {
  readonly title: string
  readonly series: ReadonlyArray<Series>
  readonly width?: number | undefined
  readonly height?: number | undefined
  /** Show a label under every n-th bar (default: every bar when few, else about 12 labels). */
  readonly labelEvery?: number | undefined
}

const round = (n: number): string => (Math.round(n * 10) / 10).toString()

/**
 * A stacked bar chart as inline SVG, with a legend and per-bar tooltips (`<title>`), sized by
 * `viewBox` so it scales with the page.
 */
export const stackedBars = (bars: ReadonlyArray<Bar>, options: BarChartOptions): Html => {
  const width = options.width ?? 640
  const height = options.height ?? 160
  const top = 18
  const bottom = 20
  const left = 34
  const plotH = height - top - bottom
  const plotW = width - left - 4
  const max = Math.max(1, ...bars.map((b) => b.values.reduce((a, v) => a + v, 0)))
  const step = bars.length === 0 ? plotW : plotW / bars.length
  const barW = Math.max(1, step * 0.8)
  const every = options.labelEvery ?? Math.max(1, Math.ceil(bars.length / 12))
  const rects = bars.map((bar, i) => {
    let y = top + plotH
    const x = left + i * step + (step - barW) / 2
    const parts = bar.values.map((v, s) => {
      const h = (v / max) * plotH
      y -= h
      const series = options.series[s]
      return v <= 0 || series === undefined
        ? html``
        : html`<rect x="${round(x)}" y="${round(y)}" width="${round(barW)}" height="${round(h)}" fill="${series.color}"><title>${bar.label} · ${series.name}: ${v}</title></rect>`
    })
    const label = i % every === 0
      ? html`<text x="${round(x + barW / 2)}" y="${height - 6}" text-anchor="middle" class="axis">${bar.label}</text>`
      : html``
    return html`${parts}${label}`
  })
  const legend = options.series.map((s, i) =>
    html`<rect x="${left + i * 110}" y="2" width="10" height="10" fill="${s.color}"></rect><text x="${left + i * 110 + 14}" y="11" class="axis">${s.name}</text>`
  )
  return html`<figure class="chart"><figcaption>${options.title}</figcaption><svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${options.title}" xmlns="http://www.w3.org/2000/svg">
<line x1="${left}" y1="${top + plotH}" x2="${width - 4}" y2="${top + plotH}" class="grid"></line>
<line x1="${left}" y1="${top}" x2="${width - 4}" y2="${top}" class="grid"></line>
<text x="${left - 4}" y="${top + 4}" text-anchor="end" class="axis">${max}</text>
<text x="${left - 4}" y="${top + plotH}" text-anchor="end" class="axis">0</text>
${legend}${rects}</svg></figure>`
}
