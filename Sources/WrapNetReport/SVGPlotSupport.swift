import Foundation

// The pieces shared by `LineChart` and `BarChart`: nice ticks, number and XML text formatting, a tiny SVG writer,
// the palette, markers and the legend. Everything but `niceTicks` is internal.

// MARK: - Ticks

/// Evenly spaced "nice" axis ticks covering `[min, max]`: the multiples of a step 1, 2 or 5 × 10^k.
///
/// The step is the smallest nice step whose covering ticks number at most `maxCount`:
/// ```
/// ticks = [floor(min / step) * step, ..., ceil(max / step) * step]    so  ticks.first <= min,  ticks.last >= max
/// ```
/// With the default `maxCount` 8 there are 4 to 8 ticks (each nice step is at most 2.5 times the previous one).
/// Each tick is computed as integer × step rather than by repeated addition, and divided by an exact power of ten
/// when the step is below 1, so `0.1 × 3` comes out as the Double nearest to 0.3 (not 0.30000000000000004).
///
/// Edge cases: `min > max` are swapped. `min == max` (or a range narrower than 1e-12 of the values) is widened to
/// ±10 % of the value, or to -1...1 around 0, so there are always at least two distinct ticks. A range whose width
/// is not representable (e.g. -1e308...1e308) returns `[min, max]`.
/// Precondition: `min` and `max` finite, `maxCount >= 2`.
public func niceTicks(min: Double, max: Double, maxCount: Int = 8) -> [Double] {
  precondition(min.isFinite && max.isFinite, "niceTicks(min: \(min), max: \(max)): both must be finite")
  precondition(maxCount >= 2, "niceTicks(min: \(min), max: \(max), maxCount: \(maxCount)): maxCount must be >= 2")
  let (lo, hi) = widenedRange(Swift.min(min, max), Swift.max(min, max))
  guard let step = NiceStep.smallest(lo, hi, maxCount: maxCount, inside: false) else { return [lo, hi] }
  return step.ticks(lo, hi, inside: false) ?? [lo, hi]
}

/// `lo...hi` made wide enough to be split into ticks: a zero or relatively tiny width becomes ±10 % of the centre
/// (±1 around 0). Expects `lo <= hi`, both finite.
func widenedRange(_ lo: Double, _ hi: Double) -> (Double, Double) {
  let magnitude = Swift.max(abs(lo), abs(hi))
  guard hi - lo <= magnitude * 1e-12 else { return (lo, hi) }
  let centre = lo / 2 + hi / 2
  let half = centre == 0 ? 1 : abs(centre) * 0.1
  return (centre - half, centre + half)
}

/// A tick step m × 10^k with m in {1, 2, 5}.
struct NiceStep {
  var mantissa: Double
  var exponent: Int

  /// The step as a Double.
  var value: Double { exponent >= 0 ? mantissa * pow(10, Double(exponent)) : mantissa / pow(10, Double(-exponent)) }

  /// Decimals needed to print any multiple of the step exactly (0 for steps >= 1).
  var decimals: Int { Swift.max(0, -exponent) }

  /// The i-th multiple of the step. For steps below 1 it divides the integer i × m by an exact power of ten, which
  /// rounds once, to the Double nearest the decimal value.
  func tick(_ i: Double) -> Double {
    exponent >= 0 ? i * mantissa * pow(10, Double(exponent)) : (i * mantissa) / pow(10, Double(-exponent))
  }

  /// First and last multiple index: covering `lo...hi` (`inside == false`) or inside it (`inside == true`).
  /// The 1e-9 slack keeps a bound that is a multiple up to rounding (0.3 / 0.1 = 2.9999999999999996) on its tick.
  func indexRange(_ lo: Double, _ hi: Double, inside: Bool) -> (first: Double, last: Double) {
    let a = lo / value
    let b = hi / value
    return inside
      ? ((a - 1e-9).rounded(.up), (b + 1e-9).rounded(.down)) : ((a + 1e-9).rounded(.down), (b - 1e-9).rounded(.up))
  }

  /// The ticks for `lo...hi`, or nil when they are not strictly increasing (a range at the limits of Double).
  func ticks(_ lo: Double, _ hi: Double, inside: Bool) -> [Double]? {
    let (first, last) = indexRange(lo, hi, inside: inside)
    guard first <= last, last - first < 1000 else { return nil }
    var result: [Double] = []
    var i = first
    while i <= last {
      let t = tick(i)
      guard t.isFinite, result.last.map({ $0 < t }) ?? true else { return nil }
      result.append(t)
      i += 1
    }
    return result
  }

  /// The smallest nice step giving at most `maxCount` ticks for `lo...hi` (covering or inside), or nil when the
  /// range's width is not a finite positive number.
  static func smallest(_ lo: Double, _ hi: Double, maxCount: Int, inside: Bool) -> NiceStep? {
    let span = hi - lo
    guard span.isFinite, span > 0 else { return nil }
    // Start one decade below the step that would give exactly maxCount intervals and walk up; at most ~6 tries.
    var exponent = Int((log10(span / Double(maxCount))).rounded(.down)) - 1
    for _ in 0..<40 {
      for mantissa in [1.0, 2.0, 5.0] {
        let step = NiceStep(mantissa: mantissa, exponent: exponent)
        guard step.value > 0, step.value.isFinite else { continue }
        let (first, last) = step.indexRange(lo, hi, inside: inside)
        if last - first + 1 <= Double(maxCount) { return step }
      }
      exponent += 1
    }
    return nil
  }
}

/// Axis ticks with their labels, ready to draw.
struct AxisTicks {
  var values: [Double]
  var labels: [String]

  /// Nice ticks covering `lo...hi` (the axis is then extended to the first and last tick).
  static func covering(_ lo: Double, _ hi: Double, maxCount: Int) -> AxisTicks {
    let (a, b) = widenedRange(lo, hi)
    guard let step = NiceStep.smallest(a, b, maxCount: maxCount, inside: false),
      let values = step.ticks(a, b, inside: false)
    else { return AxisTicks(values: [a, b], labels: plotLabels([a, b])) }
    return AxisTicks(values: values, labels: plotLabels(values, decimals: step.decimals))
  }

  /// Nice ticks inside the fixed axis range `lo...hi` (at least the two ends when no nice tick fits).
  static func inside(_ lo: Double, _ hi: Double, maxCount: Int) -> AxisTicks {
    guard let step = NiceStep.smallest(lo, hi, maxCount: maxCount, inside: true),
      let values = step.ticks(lo, hi, inside: true), values.count >= 2
    else { return AxisTicks(values: [lo, hi], labels: plotLabels([lo, hi])) }
    return AxisTicks(values: values, labels: plotLabels(values, decimals: step.decimals))
  }

  /// Given tick values (e.g. accumulator bits 4, 5, 6, 8, 12, 16), labelled with as few decimals as they need.
  static func explicit(_ values: [Double]) -> AxisTicks {
    AxisTicks(values: values, labels: plotLabels(values))
  }
}

// MARK: - Number formatting

/// Tick labels without trailing-zero noise: "0", "0.5", "10", "99.5", "-2"; "1e6", "2.5e-5" when the largest
/// magnitude is at least 1e6 or below 1e-3 (then all nonzero labels use the exponent form, so they compare easily,
/// with as many mantissa digits as the most demanding value needs, up to 12).
/// `decimals` is the number of decimals the step needs; nil picks, per value, the fewest (at most 6) that print it
/// to 1e-9 relative.
func plotLabels(_ values: [Double], decimals: Int? = nil) -> [String] {
  let finite = values.filter(\.isFinite)
  let largest = finite.lazy.map { abs($0) }.max() ?? 0
  let scientific = largest >= 1e6 || (largest > 0 && largest < 1e-3)
  // One digit count for all exponent labels, so that 1.5e6 next to 2e6 does not collapse to "2e6" twice.
  let digits = scientific ? finite.map(fewestMantissaDigits).max() ?? 0 : 0
  return values.map { v in
    guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "inf" : "-inf") }
    if v == 0 { return "0" }
    if scientific { return scientificLabel(v, digits: digits) }
    return fixedLabel(v, decimals: decimals ?? fewestDecimals(v))
  }
}

/// The fewest decimals (0...6) that print `v` to within 1e-9 relative.
func fewestDecimals(_ v: Double) -> Int {
  for d in 0...6 {
    let scale = pow(10, Double(d))
    if abs((v * scale).rounded() / scale - v) <= 1e-9 * Swift.max(1, abs(v)) { return d }
  }
  return 6
}

/// The fewest mantissa decimals (0...12) with which the exponent form of `v` reads back to within 1e-9 relative.
func fewestMantissaDigits(_ v: Double) -> Int {
  for p in 0...12 {
    if let back = Double(String(format: "%.\(p)e", v)), abs(back - v) <= 1e-9 * abs(v) { return p }
  }
  return 12
}

/// `v` with `decimals` decimals, then trailing zeros and a bare "." removed; "-0" becomes "0".
func fixedLabel(_ v: Double, decimals: Int) -> String {
  var s = String(format: "%.\(decimals)f", v)
  if s.contains(".") {
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
  }
  return s == "-0" ? "0" : s
}

/// `v` as mantissa "e" exponent with `digits` mantissa decimals, trailing zeros removed: 1500000 -> "1.5e6",
/// 0.000025 -> "2.5e-5".
func scientificLabel(_ v: Double, digits: Int) -> String {
  let s = String(format: "%.\(digits)e", v)  // e.g. "1.500e+06"
  guard let e = s.firstIndex(of: "e"), let exponent = Int(s[s.index(after: e)...]) else { return s }
  var mantissa = String(s[..<e])
  if mantissa.contains(".") {
    while mantissa.hasSuffix("0") { mantissa.removeLast() }
    if mantissa.hasSuffix(".") { mantissa.removeLast() }
  }
  return "\(mantissa)e\(exponent)"
}

/// A pixel coordinate with at most 2 decimals and no trailing zeros ("12", "12.5", "-0.25"), so files stay small
/// and identical for identical input. Clamped to ±1e6 px, far outside any drawing, so the Int conversion is safe.
func coord(_ v: Double) -> String {
  let r = Int((Swift.min(Swift.max(v.isNaN ? 0 : v, -1e6), 1e6) * 100).rounded())
  let a = abs(r)
  let sign = r < 0 ? "-" : ""
  let whole = a / 100
  let fraction = a % 100
  if fraction == 0 { return "\(sign)\(whole)" }
  if fraction % 10 == 0 { return "\(sign)\(whole).\(fraction / 10)" }
  return "\(sign)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
}

// MARK: - Text

/// `text` safe inside XML character data and double- or single-quoted attributes: & < > " ' become entities; tabs
/// and line breaks become spaces (SVG draws one line per text element); other control characters, which XML 1.0
/// forbids, become U+FFFD.
func xmlEscaped(_ text: String) -> String {
  var out = ""
  out.reserveCapacity(text.utf8.count)
  for scalar in text.unicodeScalars {
    switch scalar {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    case "'": out += "&apos;"
    case "\t", "\n", "\r": out += " "
    default:
      if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
        out += "\u{FFFD}"
      } else {
        out.unicodeScalars.append(scalar)
      }
    }
  }
  return out
}

/// Estimated width in px of `text` in a sans-serif font of `fontSize` px. No font metrics are available when the
/// SVG is written, so this errs wide (DejaVu Sans, the widest common default): layouts then leave a little spare
/// room in Helvetica or Arial rather than overlapping in DejaVu.
func estimatedTextWidth(_ text: String, fontSize: Double) -> Double {
  var em = 0.0
  for ch in text {
    if ch == " " || "iljtfr.,:;'|!()[]{}/\\".contains(ch) {
      em += 0.34
    } else if "mwMW@%".contains(ch) {
      em += 0.95
    } else if !ch.isASCII {
      em += ch.isLetter && ch.unicodeScalars.first.map({ $0.value >= 0x2E80 }) == true ? 1.0 : 0.7
    } else if ch.isUppercase {
      em += 0.72
    } else if ch.isNumber {
      em += 0.64
    } else {
      em += 0.6
    }
  }
  return em * fontSize
}

/// `text` cut to fit `maxWidth` px (estimated), ending in "…" when cut. Cuts whole characters (grapheme clusters).
func truncated(_ text: String, maxWidth: Double, fontSize: Double) -> String {
  if estimatedTextWidth(text, fontSize: fontSize) <= maxWidth { return text }
  var kept = Array(text)
  while !kept.isEmpty && estimatedTextWidth(String(kept) + "…", fontSize: fontSize) > maxWidth { kept.removeLast() }
  return String(kept) + "…"
}

// MARK: - Style

/// Colours, sizes and symbols shared by the charts.
enum PlotStyle {
  /// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), yellow left out because it
  /// is hard to see on white. Seven colours against six marker shapes: the pair repeats only after 42 series.
  static let palette = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000"]
  static func colour(_ i: Int) -> String { palette[i % palette.count] }

  static let titleSize = 17.0
  static let labelSize = 14.0
  static let tickSize = 12.0
  static let legendSize = 13.0
  static let axisColour = "#333333"
  static let gridColour = "#e3e3e3"
  static let textColour = "#222222"
  static let mutedColour = "#777777"
  static let dashPattern = "7 4"
}

/// Marker shapes, different per series so lines stay distinguishable in greyscale.
enum MarkerShape: CaseIterable {
  case circle, square, triangleUp, diamond, triangleDown, cross

  static func forSeries(_ i: Int) -> MarkerShape { allCases[i % allCases.count] }

  /// The marker centred at (x, y) with half-size r; filled shapes in `colour` with a thin white outline (so
  /// overlapping markers stay apart), the cross stroked in `colour`.
  func svg(x: Double, y: Double, r: Double, colour: String) -> String {
    let fill = "fill=\"\(colour)\" stroke=\"#ffffff\" stroke-width=\"0.75\""
    func polygon(_ points: [(Double, Double)]) -> String {
      let d = points.enumerated().map { i, p in "\(i == 0 ? "M" : "L")\(coord(x + p.0)) \(coord(y + p.1))" }
      return "<path d=\"\(d.joined(separator: " "))Z\" \(fill)/>"
    }
    switch self {
    case .circle:
      return "<circle cx=\"\(coord(x))\" cy=\"\(coord(y))\" r=\"\(coord(r))\" \(fill)/>"
    case .square:
      let s = r * 0.9
      return "<rect x=\"\(coord(x - s))\" y=\"\(coord(y - s))\" width=\"\(coord(2 * s))\""
        + " height=\"\(coord(2 * s))\" \(fill)/>"
    case .triangleUp:
      return polygon([(0, -1.2 * r), (1.1 * r, 0.8 * r), (-1.1 * r, 0.8 * r)])
    case .triangleDown:
      return polygon([(0, 1.2 * r), (1.1 * r, -0.8 * r), (-1.1 * r, -0.8 * r)])
    case .diamond:
      return polygon([(0, -1.25 * r), (1.1 * r, 0), (0, 1.25 * r), (-1.1 * r, 0)])
    case .cross:
      let s = r * 0.95
      return
        "<path d=\"M\(coord(x - s)) \(coord(y - s))L\(coord(x + s)) \(coord(y + s))M\(coord(x - s)) \(coord(y + s))"
        + "L\(coord(x + s)) \(coord(y - s))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2.2\"/>"
    }
  }
}

/// Bar fills, different per series so bars stay distinguishable in greyscale: solid, then pale stripes at four
/// angles over the colour.
enum BarHatch {
  /// Stripe angle in degrees for series i, or nil for a solid fill.
  static func angle(_ i: Int) -> Int? { [nil, 45, -45, 0, 90][i % 5] }

  /// The fill attribute value for colour and angle: the colour, or a reference to its pattern.
  static func fill(colour: String, angle: Int?) -> String {
    guard let angle else { return colour }
    return "url(#\(patternID(colour: colour, angle: angle)))"
  }

  /// The id depends only on what the pattern draws, so two charts inlined into one HTML page that share an id also
  /// share the same definition.
  static func patternID(colour: String, angle: Int) -> String {
    "wn-hatch-\(colour.dropFirst())-\(angle < 0 ? "m\(-angle)" : "\(angle)")"
  }

  /// The `<pattern>` definition for colour and angle.
  static func definition(colour: String, angle: Int) -> String {
    "<pattern id=\"\(patternID(colour: colour, angle: angle))\" width=\"7\" height=\"7\""
      + " patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(\(angle))\">"
      + "<rect width=\"7\" height=\"7\" fill=\"\(colour)\"/>"
      + "<rect width=\"2.5\" height=\"7\" fill=\"#ffffff\" fill-opacity=\"0.55\"/></pattern>"
  }
}

// MARK: - SVG writer

/// Accumulates SVG elements and wraps them in a standalone SVG 1.1 document.
struct SVGCanvas {
  var width: Int
  var height: Int
  private var body: [String] = []

  init(width: Int, height: Int) {
    self.width = width
    self.height = height
  }

  enum Anchor: String { case start, middle, end }

  mutating func add(_ element: String) { body.append(element) }

  mutating func line(
    _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, colour: String, width: Double = 1
  ) {
    add(
      "<line x1=\"\(coord(x1))\" y1=\"\(coord(y1))\" x2=\"\(coord(x2))\" y2=\"\(coord(y2))\" stroke=\"\(colour)\""
        + " stroke-width=\"\(coord(width))\"/>")
  }

  /// A text element; `text` is escaped here. `rotate` (degrees) turns it about its anchor point.
  mutating func text(
    _ text: String, x: Double, y: Double, size: Double, anchor: Anchor = .start, bold: Bool = false,
    colour: String = PlotStyle.textColour, rotate: Double? = nil, extra: String = ""
  ) {
    var attributes = "x=\"\(coord(x))\" y=\"\(coord(y))\" font-size=\"\(coord(size))\""
    if anchor != .start { attributes += " text-anchor=\"\(anchor.rawValue)\"" }
    if bold { attributes += " font-weight=\"bold\"" }
    attributes += " fill=\"\(colour)\""
    if let rotate { attributes += " transform=\"rotate(\(coord(rotate)) \(coord(x)) \(coord(y)))\"" }
    if !extra.isEmpty { attributes += " " + extra }
    add("<text \(attributes)>\(xmlEscaped(text))</text>")
  }

  /// The whole document: XML declaration, root element with size and viewBox, white background, the elements.
  func document(defs: [String] = []) -> String {
    var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\""
    out += " viewBox=\"0 0 \(width) \(height)\" version=\"1.1\" font-family=\"sans-serif\">\n"
    if !defs.isEmpty { out += "<defs>\n" + defs.joined(separator: "\n") + "\n</defs>\n" }
    out += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
    for element in body {
      out += element
      out += "\n"
    }
    out += "</svg>\n"
    return out
  }
}

// MARK: - Layout pieces

/// The rectangle data are drawn in, in px.
struct PlotArea {
  var left: Double
  var top: Double
  var right: Double
  var bottom: Double
  var width: Double { right - left }
  var height: Double { bottom - top }

  /// Whether (x, y) lies inside, with `slack` px to spare.
  func contains(_ x: Double, _ y: Double, slack: Double = 0.5) -> Bool {
    x >= left - slack && x <= right + slack && y >= top - slack && y <= bottom + slack
  }

  /// The part of the segment (x0, y0)-(x1, y1) inside the area (Liang–Barsky), or nil when none of it is. Used
  /// instead of an SVG clipPath so that no coordinate is huge and the document needs no ids.
  func clip(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) -> (Double, Double, Double, Double)? {
    let dx = x1 - x0
    let dy = y1 - y0
    var t0 = 0.0
    var t1 = 1.0
    // Each pair (p, q): the segment is inside the edge where p * t <= q.
    for (p, q) in [(-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)] {
      if p == 0 {
        if q < 0 { return nil }
      } else {
        let t = q / p
        if p < 0 { t0 = Swift.max(t0, t) } else { t1 = Swift.min(t1, t) }
        if t0 > t1 { return nil }
      }
    }
    return (x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy)
  }
}

/// One legend row: a name and the symbol that identifies the series.
struct LegendEntry {
  enum Symbol {
    /// A short line (dashed or not), with the series' marker when it has one.
    case line(dashed: Bool, marker: MarkerShape?)
    /// A filled square, with a fill that may be a pattern reference.
    case swatch(fill: String)
  }

  var name: String
  var colour: String
  var symbol: Symbol
}

/// A legend to the right of the plot area, so it never covers data.
struct Legend {
  static let rowHeight = 20.0
  static let symbolWidth = 30.0
  static let padding = 8.0
  static let gap = 6.0

  var entries: [LegendEntry]
  /// Text width available for names, px (names are cut to it).
  var textWidth: Double

  /// A legend whose names get as much width as they need, but the whole box at most `maxWidth` px.
  init(entries: [LegendEntry], maxWidth: Double) {
    self.entries = entries
    let widest = entries.map { estimatedTextWidth($0.name, fontSize: PlotStyle.legendSize) }.max() ?? 0
    let overhead = 2 * Legend.padding + Legend.symbolWidth + Legend.gap
    textWidth = Swift.max(30, Swift.min(widest, maxWidth - overhead))
  }

  /// Width of the box in px (0 when there are no entries).
  var width: Double { entries.isEmpty ? 0 : 2 * Legend.padding + Legend.symbolWidth + Legend.gap + textWidth }

  /// Draws the box with its top-left corner at (x, y), using at most `maxHeight` px; rows that do not fit are
  /// summarised in a last row "+N more".
  func draw(on canvas: inout SVGCanvas, x: Double, y: Double, maxHeight: Double) {
    guard !entries.isEmpty else { return }
    let fitting = Swift.max(1, Int((maxHeight - 2 * Legend.padding) / Legend.rowHeight))
    let shown = entries.count <= fitting ? entries.count : Swift.max(0, fitting - 1)
    let rows = shown + (shown < entries.count ? 1 : 0)
    let height = Double(rows) * Legend.rowHeight + 2 * Legend.padding - 4
    canvas.add(
      "<rect x=\"\(coord(x))\" y=\"\(coord(y))\" width=\"\(coord(width))\" height=\"\(coord(height))\""
        + " fill=\"#ffffff\" stroke=\"#cccccc\" stroke-width=\"1\" rx=\"3\"/>")
    for (i, entry) in entries.prefix(shown).enumerated() {
      let mid = y + Legend.padding + Double(i) * Legend.rowHeight + Legend.rowHeight / 2 - 2
      let sx = x + Legend.padding
      var group = "<g class=\"legend-entry\"><title>\(xmlEscaped(entry.name))</title>"
      switch entry.symbol {
      case .line(let dashed, let marker):
        group += "<line x1=\"\(coord(sx))\" y1=\"\(coord(mid))\" x2=\"\(coord(sx + Legend.symbolWidth))\""
        group += " y2=\"\(coord(mid))\" stroke=\"\(entry.colour)\" stroke-width=\"2\""
        group += dashed ? " stroke-dasharray=\"\(PlotStyle.dashPattern)\"/>" : "/>"
        if let marker { group += marker.svg(x: sx + Legend.symbolWidth / 2, y: mid, r: 4, colour: entry.colour) }
      case .swatch(let fill):
        group += "<rect x=\"\(coord(sx + 8))\" y=\"\(coord(mid - 7))\" width=\"14\" height=\"14\" fill=\"\(fill)\"/>"
      }
      group += "</g>"
      canvas.add(group)
      canvas.text(
        truncated(entry.name, maxWidth: textWidth, fontSize: PlotStyle.legendSize),
        x: sx + Legend.symbolWidth + Legend.gap, y: mid + 4.5, size: PlotStyle.legendSize)
    }
    if shown < entries.count {
      let mid = y + Legend.padding + Double(shown) * Legend.rowHeight + Legend.rowHeight / 2 - 2
      canvas.text(
        "+\(entries.count - shown) more", x: x + Legend.padding, y: mid + 4.5, size: PlotStyle.legendSize,
        colour: PlotStyle.mutedColour)
    }
  }
}

/// Draws horizontal grid lines, left axis, tick marks and right-aligned tick labels for y ticks at pixel rows
/// `rows` (same order as `ticks.labels`).
func drawYAxis(on canvas: inout SVGCanvas, area: PlotArea, ticks: AxisTicks, rows: [Double]) {
  var grid = "<g stroke=\"\(PlotStyle.gridColour)\" stroke-width=\"1\">"
  for y in rows where y > area.top + 0.5 && y < area.bottom - 0.5 {
    grid += "<line x1=\"\(coord(area.left))\" y1=\"\(coord(y))\" x2=\"\(coord(area.right))\" y2=\"\(coord(y))\"/>"
  }
  canvas.add(grid + "</g>")
  var marks = "<g stroke=\"\(PlotStyle.axisColour)\" stroke-width=\"1\">"
  for y in rows {
    marks += "<line x1=\"\(coord(area.left - 5))\" y1=\"\(coord(y))\" x2=\"\(coord(area.left))\" y2=\"\(coord(y))\"/>"
  }
  canvas.add(marks + "</g>")
  for (label, y) in zip(ticks.labels, rows) {
    canvas.text(label, x: area.left - 8, y: y + 4, size: PlotStyle.tickSize, anchor: .end)
  }
}

/// What every chart draws around its plot area last: "no data" in the middle when nothing was plotted, the legend to
/// the right, the title above and the y-axis label to the left.
func drawDecorations(
  on canvas: inout SVGCanvas, area: PlotArea, isEmpty: Bool, legend: Legend, title: String, yLabel: String,
  documentHeight: Double
) {
  if isEmpty {
    canvas.text(
      "no data", x: (area.left + area.right) / 2, y: (area.top + area.bottom) / 2, size: PlotStyle.labelSize,
      anchor: .middle, colour: PlotStyle.mutedColour)
  }
  legend.draw(on: &canvas, x: area.right + 14, y: area.top, maxHeight: documentHeight - area.top - 10)
  drawTitle(on: &canvas, title, area: area)
  drawYLabel(on: &canvas, yLabel, area: area)
}

/// The y-axis label, rotated to read bottom to top, centred on the plot area's height.
func drawYLabel(on canvas: inout SVGCanvas, _ label: String, area: PlotArea) {
  guard !label.isEmpty else { return }
  let shown = truncated(label, maxWidth: area.height, fontSize: PlotStyle.labelSize)
  canvas.text(shown, x: 20, y: (area.top + area.bottom) / 2, size: PlotStyle.labelSize, anchor: .middle, rotate: -90)
}

/// The title, centred over the plot area (cut to the document width).
func drawTitle(on canvas: inout SVGCanvas, _ title: String, area: PlotArea) {
  guard !title.isEmpty else { return }
  // Bold glyphs are about 10 % wider: estimate with a correspondingly larger size.
  let boldSize = PlotStyle.titleSize * 1.1
  let shown = truncated(title, maxWidth: Double(canvas.width) - 20, fontSize: boldSize)
  let halfWidth = estimatedTextWidth(shown, fontSize: boldSize) / 2
  // Centred over the plot area, but moved in when that would push it past either edge of the document.
  let centre = Swift.min(Swift.max((area.left + area.right) / 2, 10 + halfWidth), Double(canvas.width) - 10 - halfWidth)
  canvas.text(shown, x: centre, y: 27, size: PlotStyle.titleSize, anchor: .middle, bold: true)
}

/// Width in px of the widest y tick label.
func yTickLabelWidth(_ ticks: AxisTicks) -> Double {
  ticks.labels.map { estimatedTextWidth($0, fontSize: PlotStyle.tickSize) }.max() ?? 0
}
