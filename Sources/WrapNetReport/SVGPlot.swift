import Foundation

// Small, dependency-free SVG charts for reports: accuracy against accumulator bits, overflow counts per layer, the
// cyclic activation's shape. Output is a standalone SVG 1.1 document; same input, byte-identical output.
// Shared helpers (ticks, formatting, legend, writer) are in SVGPlotSupport.swift.

/// One line of a line chart: a name for the legend and the points, drawn in the given order.
///
/// Points with a NaN or infinite coordinate are skipped and break the line there, so a function can return `.nan`
/// at a discontinuity (e.g. where a wrap-around jumps) to avoid a vertical connecting line.
/// Equality compares names, points and `dashed`, treating NaN as equal to NaN (so a series equals its copy).
public struct PlotSeries: Sendable, Equatable {
  /// Legend text; any characters (escaped in the SVG), cut with "…" when too long for the legend.
  public var name: String
  /// The x coordinates, `xs.count == ys.count`.
  public private(set) var xs: [Double]
  /// The y coordinates, `ys.count == xs.count`.
  public private(set) var ys: [Double]
  /// Draw the line dashed (markers stay solid), e.g. for a baseline or a reference curve.
  public var dashed: Bool

  /// The points as (x, y) pairs; setting replaces both coordinate arrays.
  public var points: [(x: Double, y: Double)] {
    get { zip(xs, ys).map { (x: $0, y: $1) } }
    set {
      xs = newValue.map(\.x)
      ys = newValue.map(\.y)
    }
  }

  /// A series from (x, y) pairs, e.g. `[(4, 10.2), (5, 61.0), (6, 97.3)]`. Any number of points, including none.
  public init(name: String, points: [(Double, Double)], dashed: Bool = false) {
    self.name = name
    self.xs = points.map(\.0)
    self.ys = points.map(\.1)
    self.dashed = dashed
  }

  /// A series from separate coordinate arrays. Precondition: `xs.count == ys.count`.
  public init(name: String, xs: [Double], ys: [Double], dashed: Bool = false) {
    precondition(xs.count == ys.count, "PlotSeries \"\(name)\": xs.count \(xs.count) != ys.count \(ys.count)")
    self.name = name
    self.xs = xs
    self.ys = ys
    self.dashed = dashed
  }

  /// `samples` points (x, f(x)) evenly spaced from `from` to `to`, both ends included:
  /// x_i = from + (to - from) * i / (samples - 1), with the last x exactly `to`. One sample gives (from, f(from)).
  /// Use it to plot a function's shape, e.g. the cyclic activation over one accumulator period.
  /// Precondition: `samples >= 1`, `from` and `to` finite.
  public static func function(
    _ f: (Double) -> Double, from: Double, to: Double, samples: Int
  ) -> [(Double, Double)] {
    precondition(samples >= 1, "PlotSeries.function: samples \(samples) must be at least 1")
    precondition(from.isFinite && to.isFinite, "PlotSeries.function: range \(from)...\(to) must be finite")
    if samples == 1 { return [(from, f(from))] }
    return (0..<samples).map { i in
      // The last point is set to `to` exactly: from + (to - from) * 1 can miss it by one rounding.
      let x = i == samples - 1 ? to : from + (to - from) * Double(i) / Double(samples - 1)
      return (x, f(x))
    }
  }

  public static func == (a: PlotSeries, b: PlotSeries) -> Bool {
    func same(_ u: [Double], _ v: [Double]) -> Bool {
      u.count == v.count && zip(u, v).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }
    return a.name == b.name && a.dashed == b.dashed && same(a.xs, b.xs) && same(a.ys, b.ys)
  }

  /// The points with both coordinates finite.
  var finitePoints: [(x: Double, y: Double)] {
    zip(xs, ys).compactMap { x, y in x.isFinite && y.isFinite ? (x: x, y: y) : nil }
  }
}

/// A line chart with markers, axes, ticks, grid, axis labels, title and legend, written as SVG.
///
/// Layout: title on top, rotated y label on the left, x label below, legend to the right of the plot area (never
/// over the data). Series i gets Okabe–Ito colour i mod 7 and marker shape i mod 6 (circle, square, triangle,
/// diamond, inverted triangle, cross), so lines differ in greyscale too; `dashed` series are dashed.
///
/// Axes: x ticks are `xTicks` when given (the axis spans them and the data, plus 3 % each side), else nice ticks
/// (1, 2, 5 × 10^k, see `niceTicks`) covering the data. The y axis is `yRange` when given (data outside it are
/// clipped at its edge, ticks are the nice values inside it), else nice ticks covering the data.
///
/// Edge cases: no series or no finite point draws empty axes over 0...1 with "no data"; a single point, or all
/// values equal, widens the range to ±10 % of the value (±1 around 0); NaN and infinite coordinates are skipped and
/// break the line; an isolated point gets a marker even when `markers` is false; long names are cut with "…" in the
/// legend (the full name is in a tooltip); legend rows that do not fit are summarised as "+N more".
public struct LineChart: Sendable, Equatable {
  /// Title above the plot ("" for none).
  public var title: String
  /// Label under the x axis ("" for none).
  public var xLabel: String
  /// Label left of the y axis, rotated ("" for none).
  public var yLabel: String
  /// The lines, drawn in order (later ones on top).
  public var series: [PlotSeries]
  /// Explicit x tick positions, e.g. accumulator bits `[4, 5, 6, 7, 8, 10, 12, 16]`; nil for automatic nice ticks.
  /// Non-finite entries are ignored; an empty array draws no x ticks. Labels that would overlap are thinned.
  public var xTicks: [Double]?
  /// Fixed y axis range; nil for automatic (data range extended to nice ticks). A zero-width range is widened.
  public var yRange: ClosedRange<Double>?
  /// Draw a marker at every point.
  public var markers: Bool

  /// A line chart; see the type's documentation for layout and edge cases.
  public init(
    title: String, xLabel: String, yLabel: String, series: [PlotSeries], xTicks: [Double]? = nil,
    yRange: ClosedRange<Double>? = nil, markers: Bool = true
  ) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
    self.xTicks = xTicks
    self.yRange = yRange
    self.markers = markers
  }

  /// A complete standalone SVG 1.1 document (UTF-8, starting with the XML declaration), `width` × `height` px.
  /// Deterministic: the same chart gives byte-identical text. Precondition: `width >= 200`, `height >= 150`.
  public func svg(width: Int = 720, height: Int = 440) -> String {
    precondition(
      width >= 200 && height >= 150, "LineChart.svg(width: \(width), height: \(height)): needs at least 200 x 150 px")
    let docWidth = Double(width)
    let docHeight = Double(height)
    var canvas = SVGCanvas(width: width, height: height)
    let finite = series.flatMap(\.finitePoints)

    // Rows first: the plot height decides how many y ticks fit (about one per 45 px), and the y tick labels decide
    // the left margin.
    let top = title.isEmpty ? 16.0 : 44.0
    let bottom = docHeight - (xLabel.isEmpty ? 32 : 54)
    let yMaxCount = min(max(Int((bottom - top) / 45), 4), 8)
    let yAxis: AxisTicks
    let yLo: Double
    let yHi: Double
    if let range = yRange, range.lowerBound.isFinite, range.upperBound.isFinite {
      (yLo, yHi) = widenedRange(range.lowerBound, range.upperBound)
      yAxis = .inside(yLo, yHi, maxCount: yMaxCount)
    } else {
      let ys = finite.map(\.y)
      yAxis = .covering(ys.min() ?? 0, ys.max() ?? 1, maxCount: yMaxCount)
      yLo = yAxis.values[0]
      yHi = yAxis.values[yAxis.values.count - 1]
    }

    let left = (yLabel.isEmpty ? 10 : 34) + yTickLabelWidth(yAxis) + 9
    let legend = Legend(
      entries: series.enumerated().map { i, s in
        LegendEntry(
          name: s.name, colour: PlotStyle.colour(i),
          symbol: .line(dashed: s.dashed, marker: markers ? MarkerShape.forSeries(i) : nil))
      },
      maxWidth: docWidth * 0.36)
    var right = docWidth - (legend.width > 0 ? legend.width + 26 : 24)

    // Columns: the plot width decides how many automatic x ticks fit (about one per 70 px).
    let xs = finite.map(\.x)
    let xAxis: AxisTicks
    let xLo: Double
    let xHi: Double
    if let explicit = xTicks {
      let values = Array(Set(explicit.filter(\.isFinite))).sorted()
      let all = xs + values
      let (lo, hi) = widenedRange(all.min() ?? 0, all.max() ?? 1)
      // 3 % to spare on each side, so the markers at the first and last tick do not sit on the axes.
      xLo = lo - (hi / 2 - lo / 2) * 0.06
      xHi = hi + (hi / 2 - lo / 2) * 0.06
      xAxis = .explicit(values)
    } else {
      xAxis = .covering(xs.min() ?? 0, xs.max() ?? 1, maxCount: min(max(Int((right - left) / 70), 4), 8))
      xLo = xAxis.values[0]
      xHi = xAxis.values[xAxis.values.count - 1]
    }
    if legend.width == 0, let last = xAxis.labels.last {
      // Without a legend the last x label, centred on the right edge, needs half its width of margin.
      right = min(right, docWidth - estimatedTextWidth(last, fontSize: PlotStyle.tickSize) / 2 - 6)
    }
    let area = PlotArea(left: left, top: top, right: right, bottom: bottom)

    // Halves keep the differences finite for data near ±Double.greatestFiniteMagnitude.
    func px(_ x: Double) -> Double { area.left + (x / 2 - xLo / 2) / (xHi / 2 - xLo / 2) * area.width }
    func py(_ y: Double) -> Double { area.bottom - (y / 2 - yLo / 2) / (yHi / 2 - yLo / 2) * area.height }

    drawYAxis(on: &canvas, area: area, ticks: yAxis, rows: yAxis.values.map(py))
    drawXAxis(on: &canvas, area: area, ticks: xAxis, columns: xAxis.values.map(px))
    canvas.line(area.left, area.top, area.left, area.bottom, colour: PlotStyle.axisColour)
    canvas.line(area.left, area.bottom, area.right, area.bottom, colour: PlotStyle.axisColour)

    for (i, s) in series.enumerated() {
      drawSeries(s, index: i, on: &canvas, area: area, px: px, py: py)
    }
    drawDecorations(
      on: &canvas, area: area, isEmpty: finite.isEmpty, legend: legend, title: title, yLabel: yLabel, documentHeight: docHeight)
    if !xLabel.isEmpty {
      canvas.text(
        truncated(xLabel, maxWidth: area.width, fontSize: PlotStyle.labelSize), x: (area.left + area.right) / 2,
        y: area.bottom + 44, size: PlotStyle.labelSize, anchor: .middle)
    }
    return canvas.document()
  }

  /// Vertical grid lines, tick marks and centred labels under the plot; a label that would overlap the previous
  /// one shown (explicit ticks such as 4, 5, 6, 7, 8 on a narrow plot) is left out.
  private func drawXAxis(on canvas: inout SVGCanvas, area: PlotArea, ticks: AxisTicks, columns: [Double]) {
    var grid = "<g stroke=\"\(PlotStyle.gridColour)\" stroke-width=\"1\">"
    var marks = "<g stroke=\"\(PlotStyle.axisColour)\" stroke-width=\"1\">"
    for x in columns {
      if x > area.left + 0.5 && x < area.right - 0.5 {
        grid += "<line x1=\"\(coord(x))\" y1=\"\(coord(area.top))\" x2=\"\(coord(x))\" y2=\"\(coord(area.bottom))\"/>"
      }
      marks +=
        "<line x1=\"\(coord(x))\" y1=\"\(coord(area.bottom))\" x2=\"\(coord(x))\" y2=\"\(coord(area.bottom + 5))\"/>"
    }
    canvas.add(grid + "</g>")
    canvas.add(marks + "</g>")
    var lastRightEdge = -Double.infinity
    for (label, x) in zip(ticks.labels, columns) {
      let half = estimatedTextWidth(label, fontSize: PlotStyle.tickSize) / 2
      guard x - half >= lastRightEdge + 4 else { continue }
      canvas.text(label, x: x, y: area.bottom + 20, size: PlotStyle.tickSize, anchor: .middle)
      lastRightEdge = x + half
    }
  }

  /// One series: its line (clipped to the plot area, broken at non-finite points) and its markers, in a group
  /// with class "series series-<index>" and the name as tooltip.
  private func drawSeries(
    _ s: PlotSeries, index: Int, on canvas: inout SVGCanvas, area: PlotArea, px: (Double) -> Double,
    py: (Double) -> Double
  ) {
    let colour = PlotStyle.colour(index)
    let shape = MarkerShape.forSeries(index)
    var path = ""
    var penAt: String? = nil  // where the last drawn segment ended, as printed; nil after a break
    var previous: (Double, Double)? = nil  // the previous finite point of the current run, px
    var runLength = 0
    var marks: [String] = []
    var isolated: [(Double, Double)] = []

    func endRun() {
      if runLength == 1, let p = previous, area.contains(p.0, p.1) { isolated.append(p) }
      previous = nil
      penAt = nil
      runLength = 0
    }
    for (x, y) in zip(s.xs, s.ys) {
      let p = (px(x), py(y))
      guard x.isFinite, y.isFinite, p.0.isFinite, p.1.isFinite else {
        endRun()
        continue
      }
      if let q = previous, let c = area.clip(q.0, q.1, p.0, p.1) {
        let start = "\(coord(c.0)) \(coord(c.1))"
        if penAt != start { path += "M\(start)" }
        let end = "\(coord(c.2)) \(coord(c.3))"
        path += "L\(end)"
        penAt = end
      } else if previous != nil {
        // The segment lies wholly outside the plot area: the next visible one starts a new subpath.
        penAt = nil
      }
      if markers && area.contains(p.0, p.1) { marks.append(shape.svg(x: p.0, y: p.1, r: 4, colour: colour)) }
      previous = p
      runLength += 1
    }
    endRun()

    var group = "<g class=\"series series-\(index)\"><title>\(xmlEscaped(s.name))</title>"
    if !path.isEmpty {
      group += "\n<path d=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-linejoin=\"round\""
      group += " stroke-linecap=\"round\"\(s.dashed ? " stroke-dasharray=\"\(PlotStyle.dashPattern)\"" : "")/>"
    }
    for mark in marks { group += "\n" + mark }
    if !markers {
      // Without markers a point with no neighbour would be invisible.
      for p in isolated {
        group += "\n<circle cx=\"\(coord(p.0))\" cy=\"\(coord(p.1))\" r=\"3\" fill=\"\(colour)\"/>"
      }
    }
    canvas.add(group + "\n</g>")
  }
}

/// Grouped bars written as SVG: one group per category (e.g. layer names), one bar per series (e.g. "before",
/// "after"), bars growing from 0 (or from the bottom of a log axis).
///
/// Series i is filled with Okabe–Ito colour i mod 7, solid for the first and with pale stripes at different angles
/// for the next four, so bars differ in greyscale too; the legend is to the right of the plot area. Category labels
/// are centred under their group, rotated 45° when they would overlap (and thinned when even that is too tight);
/// long ones are cut with "…". Every bar has a tooltip "series, category: value".
///
/// Linear axis: nice ticks covering 0 and all values (negative values go down from a zero line). Log axis
/// (`logScale`): decades 10^k from one below the smallest positive value up to the largest, minor ticks at 2...9 ×
/// 10^k; zero values draw no bar and the label "0" at the baseline, negative values the label "<0".
/// Non-finite values draw no bar and the label "n/a". No categories or no series draws empty axes.
public struct BarChart: Sendable {
  /// Title above the plot ("" for none).
  public var title: String
  /// Label left of the y axis, rotated ("" for none).
  public var yLabel: String
  /// Group names along the x axis, left to right.
  public var categories: [String]
  /// One entry per bar within each group, with one value per category (`values.count == categories.count`).
  public var series: [(name: String, values: [Double])]
  /// Use a log10 y axis (for counts spanning decades, such as overflows per layer).
  public var logScale: Bool

  /// A bar chart. Precondition: every series has `categories.count` values.
  public init(
    title: String, yLabel: String, categories: [String], series: [(String, [Double])], logScale: Bool = false
  ) {
    for (name, values) in series {
      precondition(
        values.count == categories.count,
        "BarChart series \"\(name)\" has \(values.count) values but there are \(categories.count) categories")
    }
    self.title = title
    self.yLabel = yLabel
    self.categories = categories
    self.series = series.map { (name: $0.0, values: $0.1) }
    self.logScale = logScale
  }

  /// A complete standalone SVG 1.1 document (UTF-8, starting with the XML declaration), `width` × `height` px.
  /// Deterministic: the same chart gives byte-identical text. Preconditions: `width >= 200`, `height >= 150`, and
  /// every series still has `categories.count` values (the properties are mutable).
  public func svg(width: Int = 720, height: Int = 440) -> String {
    precondition(
      width >= 200 && height >= 150, "BarChart.svg(width: \(width), height: \(height)): needs at least 200 x 150 px")
    for s in series {
      precondition(
        s.values.count == categories.count,
        "BarChart series \"\(s.name)\" has \(s.values.count) values but there are \(categories.count) categories")
    }
    let docWidth = Double(width)
    let docHeight = Double(height)
    var canvas = SVGCanvas(width: width, height: height)
    let values = series.flatMap(\.values).filter(\.isFinite)

    // The y ticks need only a rough plot height (for their count); the final height depends on the category
    // labels, which depend on the plot width, which depends on the y tick labels.
    let top = title.isEmpty ? 16.0 : 44.0
    let yMaxCount = min(max(Int((docHeight - top - 60) / 45), 4), 8)
    let scale =
      logScale
      ? YScale.fittingLog(values.filter { $0 > 0 }, maxCount: yMaxCount)
      : YScale.fittingLinear(values, maxCount: yMaxCount)

    var left = (yLabel.isEmpty ? 10 : 34) + yTickLabelWidth(scale.ticks) + 9
    let legend = Legend(
      entries: series.enumerated().map { i, s in
        let colour = PlotStyle.colour(i)
        return LegendEntry(
          name: s.name, colour: colour, symbol: .swatch(fill: BarHatch.fill(colour: colour, angle: BarHatch.angle(i))))
      },
      maxWidth: docWidth * 0.36)
    let right = docWidth - (legend.width > 0 ? legend.width + 26 : 24)

    // Category labels: horizontal when they fit their group, else rotated 45° and every k-th one when rotated
    // labels (about 17 px apart at 12 px) would still collide; cut so they take at most 40 % of the height.
    let count = categories.count
    var groupWidth = (right - left) / Double(max(count, 1))
    var labels = categories.map { truncated($0, maxWidth: min(160, docWidth * 0.25), fontSize: PlotStyle.tickSize) }
    var widest = labels.map { estimatedTextWidth($0, fontSize: PlotStyle.tickSize) }.max() ?? 0
    let rotated = widest > groupWidth - 6
    var every = 1
    var bottomMargin = 34.0
    if rotated {
      let maxDrop = docHeight * 0.4 - 26
      if widest * 0.7071 > maxDrop {
        labels = labels.map { truncated($0, maxWidth: maxDrop / 0.7071, fontSize: PlotStyle.tickSize) }
        widest = labels.map { estimatedTextWidth($0, fontSize: PlotStyle.tickSize) }.max() ?? 0
      }
      bottomMargin = 26 + widest * 0.7071
      // The first label runs down and to the left of its group: keep it inside the document.
      left = max(left, widest * 0.7071 - groupWidth / 2 + 8)
      groupWidth = (right - left) / Double(max(count, 1))
      every = max(1, Int((17 / groupWidth).rounded(.up)))
    }
    let area = PlotArea(left: left, top: top, right: right, bottom: docHeight - bottomMargin)

    drawYAxis(on: &canvas, area: area, ticks: scale.ticks, rows: scale.ticks.values.map { scale.pixel($0, area) })
    if case .log(let lo, let hi, let step, _) = scale, step == 1, hi - lo <= 6 {
      // Minor ticks at 2...9 × 10^k help read values between decades.
      var minor = "<g stroke=\"\(PlotStyle.axisColour)\" stroke-width=\"1\">"
      for k in lo..<hi {
        for m in 2...9 {
          let y = scale.pixel(Double(k) + log10(Double(m)), area)
          minor +=
            "<line x1=\"\(coord(area.left - 3))\" y1=\"\(coord(y))\" x2=\"\(coord(area.left))\" y2=\"\(coord(y))\"/>"
        }
      }
      canvas.add(minor + "</g>")
    }

    // Bars fill 80 % of their group, split evenly between the series, with a 10 % gap inside each bar's slot.
    var defs: [String] = []
    for i in series.indices {
      if let angle = BarHatch.angle(i) {
        let definition = BarHatch.definition(colour: PlotStyle.colour(i), angle: angle)
        if !defs.contains(definition) { defs.append(definition) }
      }
    }
    let slot = groupWidth * 0.8 / Double(max(series.count, 1))
    let baseline = scale.baselinePixel(area)
    for (c, category) in categories.enumerated() {
      for (i, s) in series.enumerated() {
        let value = s.values[c]
        let x = area.left + Double(c) * groupWidth + groupWidth * 0.1 + Double(i) * slot
        let centre = x + slot / 2
        let tooltip = "<title>\(xmlEscaped("\(s.name), \(category): \(plotLabels([value])[0])"))</title>"
        guard value.isFinite, !logScale || value > 0 else {
          let note = !value.isFinite ? "n/a" : (value == 0 ? "0" : "<0")
          canvas.text(
            note, x: centre, y: baseline - 4, size: PlotStyle.tickSize, anchor: .middle,
            colour: PlotStyle.mutedColour)
          continue
        }
        let y = min(max(scale.pixel(logScale ? log10(value) : value, area), area.top), area.bottom)
        let fill = BarHatch.fill(colour: PlotStyle.colour(i), angle: BarHatch.angle(i))
        canvas.add(
          "<rect class=\"bar\" x=\"\(coord(x + slot * 0.05))\" y=\"\(coord(min(y, baseline)))\""
            + " width=\"\(coord(slot * 0.9))\" height=\"\(coord(abs(baseline - y)))\" fill=\"\(fill)\">"
            + tooltip + "</rect>")
      }
    }

    canvas.line(area.left, area.top, area.left, area.bottom, colour: PlotStyle.axisColour)
    canvas.line(area.left, area.bottom, area.right, area.bottom, colour: PlotStyle.axisColour)
    if baseline < area.bottom - 0.5 {
      canvas.line(area.left, baseline, area.right, baseline, colour: PlotStyle.axisColour)
    }
    for (c, label) in labels.enumerated() where c % every == 0 {
      let centre = area.left + (Double(c) + 0.5) * groupWidth
      if rotated {
        canvas.text(
          label, x: centre + 4, y: area.bottom + 14, size: PlotStyle.tickSize, anchor: .end, rotate: -45)
      } else {
        canvas.text(label, x: centre, y: area.bottom + 20, size: PlotStyle.tickSize, anchor: .middle)
      }
    }
    drawDecorations(
      on: &canvas, area: area, isEmpty: values.isEmpty, legend: legend, title: title, yLabel: yLabel, documentHeight: docHeight)
    return canvas.document(defs: defs)
  }
}

/// The y axis of a bar chart: value (or log10 value) to pixel row, and its ticks.
private enum YScale {
  /// Linear from `lo` to `hi` (nice ticks covering 0 and the values).
  case linear(lo: Double, hi: Double, ticks: AxisTicks)
  /// Log10 from decade 10^lo to 10^hi, ticks every `step` decades.
  case log(lo: Int, hi: Int, step: Int, ticks: AxisTicks)

  static func fittingLinear(_ values: [Double], maxCount: Int) -> YScale {
    let lo = min(values.min() ?? 0, 0)
    var hi = max(values.max() ?? 0, 0)
    if hi == lo { hi = 1 }  // all zero (or none): show 0...1 rather than widening to -1...1
    let ticks = AxisTicks.covering(lo, hi, maxCount: maxCount)
    return .linear(lo: ticks.values[0], hi: ticks.values[ticks.values.count - 1], ticks: ticks)
  }

  /// Decades from the one below the smallest positive value to the one at or above the largest (1...10 when there
  /// are none); the step grows through 1, 2, 5, 10, 20, ... decades until at most `maxCount` ticks remain. Labels
  /// are plain decimals for 10^-3...10^5, else "1e<k>" throughout.
  static func fittingLog(_ positives: [Double], maxCount: Int) -> YScale {
    var lo = 0
    var hi = 1
    if let smallest = positives.min(), let largest = positives.max() {
      // Strictly below the smallest value, so that a value that is itself a power of ten still shows a bar.
      lo = Int(log10(smallest).rounded(.up)) - 1
      hi = max(Int(log10(largest).rounded(.up)), lo + 1)
    }
    var step = 1
    var n = 0
    while (hi - lo + step - 1) / step + 1 > maxCount {
      n += 1
      step = [1, 2, 5][n % 3] * Int(pow(10, Double(n / 3)))
    }
    // Align both ends to multiples of the step so the ticks are round decades.
    lo = Int((Double(lo) / Double(step)).rounded(.down)) * step
    hi = Int((Double(hi) / Double(step)).rounded(.up)) * step
    let exponents = Array(stride(from: lo, through: hi, by: step))
    let plain = exponents.allSatisfy { (-3...5).contains($0) }
    let labels = exponents.map { k in plain ? fixedLabel(pow(10, Double(k)), decimals: max(0, -k)) : "1e\(k)" }
    return .log(lo: lo, hi: hi, step: step, ticks: AxisTicks(values: exponents.map(Double.init), labels: labels))
  }

  var ticks: AxisTicks {
    switch self {
    case .linear(_, _, let ticks), .log(_, _, _, let ticks): return ticks
    }
  }

  /// Pixel row of `v`: a value (linear) or a log10 value (log).
  func pixel(_ v: Double, _ area: PlotArea) -> Double {
    switch self {
    case .linear(let lo, let hi, _):
      return area.bottom - (v / 2 - lo / 2) / (hi / 2 - lo / 2) * area.height
    case .log(let lo, let hi, _, _):
      return area.bottom - (v - Double(lo)) / Double(hi - lo) * area.height
    }
  }

  /// Pixel row bars grow from: 0 (linear) or the bottom of the axis (log).
  func baselinePixel(_ area: PlotArea) -> Double {
    switch self {
    case .linear: return pixel(0, area)
    case .log: return area.bottom
    }
  }
}
