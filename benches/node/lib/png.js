'use strict'
// A tiny RGB canvas with a 5x7 bitmap font and a PNG encoder (zlib from node core), so the
// chart needs no browser, no Python and no npm package.

const zlib = require('node:zlib')

// 5x7 glyphs, one byte per row (bit 4 = leftmost pixel), after the HD44780 character set;
// g j p q y have two extra rows for their descenders.
const GLYPHS = {
  ' ': [0, 0, 0, 0, 0, 0, 0],
  0: [14, 17, 19, 21, 25, 17, 14], 1: [4, 12, 4, 4, 4, 4, 14], 2: [14, 17, 1, 2, 4, 8, 31],
  3: [31, 2, 4, 2, 1, 17, 14], 4: [2, 6, 10, 18, 31, 2, 2], 5: [31, 16, 30, 1, 1, 17, 14],
  6: [6, 8, 16, 30, 17, 17, 14], 7: [31, 1, 2, 4, 8, 8, 8], 8: [14, 17, 17, 14, 17, 17, 14],
  9: [14, 17, 17, 15, 1, 2, 12],
  A: [14, 17, 17, 17, 31, 17, 17], B: [30, 17, 17, 30, 17, 17, 30], C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28], E: [31, 16, 16, 30, 16, 16, 31], F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15], H: [17, 17, 17, 31, 17, 17, 17], I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12], K: [17, 18, 20, 24, 20, 18, 17], L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17], N: [17, 17, 25, 21, 19, 17, 17], O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16], Q: [14, 17, 17, 17, 21, 18, 13], R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30], T: [31, 4, 4, 4, 4, 4, 4], U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4], W: [17, 17, 17, 21, 21, 21, 10], X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4], Z: [31, 1, 2, 4, 8, 16, 31],
  a: [0, 0, 14, 1, 15, 17, 15], b: [16, 16, 22, 25, 17, 17, 30], c: [0, 0, 14, 16, 16, 17, 14],
  d: [1, 1, 13, 19, 17, 17, 15], e: [0, 0, 14, 17, 31, 16, 14], f: [6, 9, 8, 28, 8, 8, 8],
  g: [0, 0, 15, 17, 17, 17, 15, 1, 14], h: [16, 16, 22, 25, 17, 17, 17], i: [4, 0, 12, 4, 4, 4, 14],
  j: [2, 0, 6, 2, 2, 2, 2, 18, 12], k: [16, 16, 18, 20, 24, 20, 18], l: [12, 4, 4, 4, 4, 4, 14],
  m: [0, 0, 26, 21, 21, 17, 17], n: [0, 0, 22, 25, 17, 17, 17], o: [0, 0, 14, 17, 17, 17, 14],
  p: [0, 0, 30, 17, 17, 17, 30, 16, 16], q: [0, 0, 15, 17, 17, 17, 15, 1, 1], r: [0, 0, 22, 25, 16, 16, 16],
  s: [0, 0, 14, 16, 14, 1, 30], t: [8, 8, 28, 8, 8, 9, 6], u: [0, 0, 17, 17, 17, 19, 13],
  v: [0, 0, 17, 17, 17, 10, 4], w: [0, 0, 17, 17, 21, 21, 10], x: [0, 0, 17, 10, 4, 10, 17],
  y: [0, 0, 17, 17, 17, 17, 15, 1, 14], z: [0, 0, 31, 2, 4, 8, 31],
  '.': [0, 0, 0, 0, 0, 12, 12], ',': [0, 0, 0, 0, 12, 4, 8], '-': [0, 0, 0, 31, 0, 0, 0],
  '+': [0, 4, 4, 31, 4, 4, 0], '/': [0, 1, 2, 4, 8, 16, 0], '(': [2, 4, 8, 8, 8, 4, 2],
  ')': [8, 4, 2, 2, 2, 4, 8], ':': [0, 12, 12, 0, 12, 12, 0], '%': [24, 25, 2, 4, 8, 19, 3],
  '=': [0, 0, 31, 0, 31, 0, 0], '<': [2, 4, 8, 16, 8, 4, 2], '>': [8, 4, 2, 1, 2, 4, 8],
  '_': [0, 0, 0, 0, 0, 0, 31], "'": [4, 4, 8, 0, 0, 0, 0], '"': [10, 10, 0, 0, 0, 0, 0],
  '?': [14, 17, 1, 2, 4, 0, 4], '!': [4, 4, 4, 4, 4, 0, 4], '#': [10, 10, 31, 10, 31, 10, 10],
  '*': [0, 4, 21, 14, 21, 4, 0], '[': [14, 8, 8, 8, 8, 8, 14], ']': [14, 2, 2, 2, 2, 2, 14],
  '~': [0, 0, 8, 21, 2, 0, 0], ';': [0, 12, 12, 0, 12, 4, 8], '|': [4, 4, 4, 4, 4, 4, 4], '&': [12, 18, 20, 8, 21, 18, 13],
}

class Canvas {
  constructor(width, height, bg = [255, 255, 255]) {
    this.width = width
    this.height = height
    this.px = Buffer.alloc(width * height * 3)
    this.rect(0, 0, width, height, bg)
  }

  set(x, y, c) {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return
    const i = (y * this.width + x) * 3
    this.px[i] = c[0]
    this.px[i + 1] = c[1]
    this.px[i + 2] = c[2]
  }

  rect(x, y, w, h, c) {
    x = Math.round(x)
    y = Math.round(y)
    for (let j = Math.max(0, y); j < Math.min(this.height, y + Math.round(h)); j++) {
      for (let i = Math.max(0, x); i < Math.min(this.width, x + Math.round(w)); i++) this.set(i, j, c)
    }
  }

  hline(x0, x1, y, c, dash = 0) {
    for (let x = Math.round(x0); x <= Math.round(x1); x++) if (!dash || Math.floor(x / dash) % 2 === 0) this.set(x, Math.round(y), c)
  }

  vline(x, y0, y1, c) {
    for (let y = Math.round(y0); y <= Math.round(y1); y++) this.set(Math.round(x), y, c)
  }

  static textWidth(s, scale = 2) {
    return s.length * 6 * scale - scale
  }

  // Left-aligned text with its top at y; align 'center' or 'right' measures first.
  text(s, x, y, c, { scale = 2, align = 'left' } = {}) {
    const w = Canvas.textWidth(s, scale)
    if (align === 'center') x -= w / 2
    else if (align === 'right') x -= w
    x = Math.round(x)
    y = Math.round(y)
    for (const ch of s) {
      const g = GLYPHS[ch] || GLYPHS['?']
      for (let row = 0; row < g.length; row++) {
        for (let col = 0; col < 5; col++) {
          if (g[row] & (16 >> col)) this.rect(x + col * scale, y + row * scale, scale, scale, c)
        }
      }
      x += 6 * scale
    }
  }

  png() {
    const raw = Buffer.alloc((this.width * 3 + 1) * this.height)
    for (let y = 0; y < this.height; y++) {
      raw[y * (this.width * 3 + 1)] = 0 // filter: none
      this.px.copy(raw, y * (this.width * 3 + 1) + 1, y * this.width * 3, (y + 1) * this.width * 3)
    }
    const ihdr = Buffer.alloc(13)
    ihdr.writeUInt32BE(this.width, 0)
    ihdr.writeUInt32BE(this.height, 4)
    ihdr[8] = 8 // bit depth
    ihdr[9] = 2 // colour type: RGB
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ])
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

function crc32(buf) {
  let c = 0xffffffff
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type, data) {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(td))
  return Buffer.concat([len, td, crc])
}

// A bar panel: groups of bars with a value label on each bar, an optional dashed reference
// line (e.g. 1.0x), a title and a value axis starting at 0.
//   groups: [{ label, sublabel, bars: [{ value | null, color, text, lo, hi }] }]
// lo/hi (optional) draw a min-max whisker over the bar.
function barPanel(cv, { x, y, w, h, title, groups, ref = null, max = null }) {
  const ink = [40, 40, 40]
  const grid = [225, 225, 225]
  cv.text(title, x, y, ink)
  const top = y + 34
  const bottom = y + h - 54
  const left = x + 56
  const right = x + w - 8
  const vals = groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.hi])).filter((v) => Number.isFinite(v))
  let vmax = max || Math.max(ref || 0, ...vals, 1e-9) * 1.15
  const step = niceStep(vmax / 5)
  vmax = Math.ceil(vmax / step) * step
  const yOf = (v) => bottom - (v / vmax) * (bottom - top)
  for (let v = 0; v <= vmax + step / 2; v += step) {
    cv.hline(left, right, yOf(v), grid)
    cv.text(fmtAxis(v), left - 6, yOf(v) - 7, ink, { align: 'right' })
  }
  cv.vline(left, top, bottom, ink)
  cv.hline(left, right, bottom, ink)
  const gw = (right - left) / groups.length
  groups.forEach((g, gi) => {
    const gx = left + gi * gw
    const n = g.bars.length
    const bw = Math.max(6, Math.min(64, (gw - 24) / Math.max(1, n)))
    const start = gx + (gw - bw * n) / 2
    g.bars.forEach((b, bi) => {
      const bx = start + bi * bw
      const scale = b.text && Canvas.textWidth(b.text, 2) <= bw - 4 ? 2 : 1
      if (Number.isFinite(b.value)) {
        cv.rect(bx + 2, yOf(b.value), bw - 4, bottom - yOf(b.value), b.color)
        let labelY = yOf(b.value)
        if (Number.isFinite(b.lo) && Number.isFinite(b.hi)) {
          const cx = bx + bw / 2
          cv.vline(cx, yOf(b.hi), yOf(b.lo), ink)
          cv.hline(cx - 4, cx + 4, yOf(b.hi), ink)
          cv.hline(cx - 4, cx + 4, yOf(b.lo), ink)
          labelY = Math.min(labelY, yOf(b.hi))
        }
        if (b.text) cv.text(b.text, bx + bw / 2, labelY - 8 * scale - 4, ink, { scale, align: 'center' })
      } else if (b.text) {
        cv.text(b.text, bx + bw / 2, bottom - 8 * scale - 4, [180, 30, 30], { scale, align: 'center' })
      }
    })
    cv.text(g.label, gx + gw / 2, bottom + 8, ink, { align: 'center', scale: g.label.length * 12 > gw ? 1 : 2 })
    if (g.sublabel) cv.text(g.sublabel, gx + gw / 2, bottom + 32, [110, 110, 110], { align: 'center', scale: Canvas.textWidth(g.sublabel, 2) <= gw - 8 ? 2 : 1 })
  })
  if (ref !== null) cv.hline(left, right, yOf(ref), [200, 30, 30], 6)
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}

function fmtAxis(v) {
  if (v >= 1000) return `${+(v / 1000).toFixed(1)}k`
  return `${+v.toFixed(2)}`
}

module.exports = { Canvas, barPanel }
