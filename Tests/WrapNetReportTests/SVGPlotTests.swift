import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetReport

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// A parsed SVG document and the queries the tests need. Parsing throws when the text is not well-formed XML.
private struct ParsedSVG {
  let document: XMLDocument

  init(_ svg: String) throws {
    document = try XMLDocument(xmlString: svg)
  }

  /// String values of the nodes an XPath selects. SVG elements live in the SVG namespace, hence `local-name()`.
  func values(_ xpath: String) throws -> [String] {
    try document.nodes(forXPath: xpath).map { $0.stringValue ?? "" }
  }

  /// The content of every `<text>` element.
  func texts() throws -> [String] { try values("//*[local-name()='text']") }

  /// XPath of series `index`'s group (class "series series-<index>"; the spaces keep series-1 from series-10).
  private func seriesGroup(_ index: Int) -> String {
    "//*[local-name()='g'][contains(concat(' ', @class, ' '), ' series-\(index) ')]"
  }

  /// The `d` attribute of series `index`'s line.
  func seriesPath(_ index: Int) throws -> String? {
    try values(seriesGroup(index) + "/*[local-name()='path']/@d").first
  }

  /// Number of circle markers in series `index`'s group.
  func circles(inSeries index: Int) throws -> Int {
    try values(seriesGroup(index) + "/*[local-name()='circle']").count
  }

  /// Every number in every path's `d` attribute, as (x, y) pairs.
  func pathPoints() throws -> [(Double, Double)] {
    var points: [(Double, Double)] = []
    for d in try values("//*[local-name()='path']/@d") {
      let numbers = d.split(whereSeparator: { "MLZ ".contains($0) }).compactMap { Double($0) }
      for i in stride(from: 0, to: numbers.count - 1, by: 2) { points.append((numbers[i], numbers[i + 1])) }
    }
    return points
  }
}

/// The accuracy-vs-bits chart the report draws, with made-up numbers.
private func accuracyChart() -> LineChart {
  let bits: [Double] = [4, 5, 6, 7, 8, 10, 12, 16]
  return LineChart(
    title: "MNIST MLP: test accuracy vs accumulator width", xLabel: "accumulator bits", yLabel: "test accuracy (%)",
    series: [
      PlotSeries(name: "32-bit baseline", points: bits.map { ($0, 98.1) }, dashed: true),
      PlotSeries(
        name: "WrapNet (cyclic + penalty)",
        points: zip(bits, [71.5, 93.2, 97.0, 97.8, 98.0, 98.1, 98.1, 98.1]).map { ($0, $1) }),
      PlotSeries(
        name: "naive wrap", points: zip(bits, [9.8, 10.3, 14.7, 41.2, 80.5, 97.2, 98.0, 98.1]).map { ($0, $1) }),
      PlotSeries(
        name: "saturate", points: zip(bits, [11.4, 25.0, 63.8, 90.1, 96.3, 97.9, 98.1, 98.1]).map { ($0, $1) }),
    ],
    xTicks: bits)
}

/// Overflow counts per layer before and after fine-tuning, with made-up numbers.
private func overflowChart(logScale: Bool) -> BarChart {
  BarChart(
    title: "Accumulator overflows per layer (8-bit)", yLabel: "overflows per image",
    categories: ["fc1", "fc2", "fc3", "conv1", "conv2"],
    series: [("before fine-tuning", [1520, 310, 48, 2.5, 0]), ("after fine-tuning", [12, 3.5, 0, 0.1, 0])],
    logScale: logScale)
}

/// Text that must never appear in a document: a non-finite number printed as a coordinate or label.
private func expectNoNonFiniteNumbers(_ svg: String, sourceLocation: SourceLocation = #_sourceLocation) {
  for bad in ["nan", "NaN", "inf"] {
    #expect(!svg.contains(bad), "document contains \"\(bad)\"", sourceLocation: sourceLocation)
  }
}

/// A line chart with short labels, for edge cases.
private func plain(
  _ series: [PlotSeries], xTicks: [Double]? = nil, yRange: ClosedRange<Double>? = nil, markers: Bool = true
) -> LineChart {
  LineChart(title: "t", xLabel: "x", yLabel: "y", series: series, xTicks: xTicks, yRange: yRange, markers: markers)
}

private let twoPoints = [PlotSeries(name: "s", points: [(1, 1), (2, 3)])]

/// A bar chart with short labels, for edge cases.
private func bars(_ categories: [String], _ series: [(String, [Double])], logScale: Bool = false) -> BarChart {
  BarChart(title: "t", yLabel: "y", categories: categories, series: series, logScale: logScale)
}

@Suite struct SVGPlotTests {
  @Test func lineChartIsStandaloneSVGWithTitleLabelsAndEverySeriesName() throws {
    let chart = accuracyChart()
    let svg = chart.svg()
    #expect(
      svg.hasPrefix(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\""
          + " height=\"440\" viewBox=\"0 0 720 440\""))
    #expect(svg.hasSuffix("</svg>\n"))
    let parsed = try ParsedSVG(svg)
    #expect(parsed.document.rootElement()?.localName == "svg")
    let texts = try parsed.texts()
    for expected in [chart.title, chart.xLabel, chart.yLabel] + chart.series.map(\.name) {
      #expect(texts.contains(expected), "missing text \"\(expected)\" in \(texts)")
    }
    // Explicit x ticks are labelled as given; the y label is rotated.
    for bit in ["4", "5", "6", "7", "8", "10", "12", "16"] { #expect(texts.contains(bit), "missing x tick \(bit)") }
    #expect(svg.contains("transform=\"rotate(-90 "))
    // White background, and one marker per point (4 series x 8 points: circles, squares, triangles, diamonds).
    #expect(svg.contains("fill=\"#ffffff\"/>"))
    #expect(try parsed.values("//*[local-name()='g'][contains(@class,'series ')]").count == 4)
    #expect(try parsed.values("//*[local-name()='circle']").count >= 8)
    expectNoNonFiniteNumbers(svg)
  }

  @Test func barChartDrawsOneBarPerValueWithCategoriesAndNames() throws {
    let chart = BarChart(
      title: "Signed bars", yLabel: "change", categories: ["a", "b", "c"],
      series: [("up", [1, 2.5, 4]), ("down", [-1, 0.5, -3])])
    let svg = chart.svg()
    let parsed = try ParsedSVG(svg)
    let texts = try parsed.texts()
    for expected in ["Signed bars", "change", "a", "b", "c", "up", "down"] {
      #expect(texts.contains(expected), "missing text \"\(expected)\" in \(texts)")
    }
    #expect(try parsed.values("//*[local-name()='rect'][@class='bar']").count == 6)
    // Nice ticks cover -3...4 and include 0.
    #expect(texts.contains("0") && texts.contains("-4") && texts.contains("4"), "\(texts)")
    // The second series is striped, so it differs from the first in greyscale too.
    #expect(svg.contains("<pattern id=\"wn-hatch-D55E00-45\""))
    #expect(try parsed.values("//*[local-name()='rect'][@class='bar']/@fill").contains("url(#wn-hatch-D55E00-45)"))
    expectNoNonFiniteNumbers(svg)
  }

  @Test func barChartLogScaleLabelsDecadesAndZeros() throws {
    let svg = overflowChart(logScale: true).svg()
    let parsed = try ParsedSVG(svg)
    let texts = try parsed.texts()
    // Positive values 0.1...1520 -> decades 0.01...10000 (one below 0.1, so its bar shows).
    for decade in ["0.01", "0.1", "1", "10", "100", "1000", "10000"] {
      #expect(texts.contains(decade), "missing decade \(decade) in \(texts)")
    }
    // 10 values, 3 of them zero: 7 bars and 3 "0" labels at the baseline (plus no tick "0" on a log axis).
    #expect(try parsed.values("//*[local-name()='rect'][@class='bar']").count == 7)
    #expect(try parsed.values("//*[local-name()='rect'][@class='bar']/@height").allSatisfy { Double($0)! > 1 })
    #expect(texts.filter { $0 == "0" }.count == 3)
    expectNoNonFiniteNumbers(svg)
  }

  @Test func xmlSpecialCharactersAreEscapedEverywhere() throws {
    let nasty = "a<b & \"c\" 'd'>"
    let line = LineChart(
      title: "T<&>", xLabel: "x & y", yLabel: "<y>", series: [PlotSeries(name: nasty, points: [(0, 1), (1, 2)])])
    let bars = BarChart(title: "T<&>", yLabel: "<y>", categories: ["<cat&>"], series: [(nasty, [3])])
    for svg in [line.svg(), bars.svg()] {
      #expect(!svg.contains("a<b") && !svg.contains("T<&>") && !svg.contains("<y>") && !svg.contains("<cat"))
      #expect(svg.contains("a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"))
      // A parser gets the original text back.
      let texts = try ParsedSVG(svg).texts()
      #expect(texts.contains(nasty) && texts.contains("T<&>") && texts.contains("<y>"), "\(texts)")
    }
    #expect(try ParsedSVG(bars.svg()).texts().contains("<cat&>"))
    // Control characters, which XML 1.0 forbids, do not break the document.
    let control = LineChart(title: "bell\u{7}tab\tnewline\n", xLabel: "", yLabel: "", series: [])
    _ = try ParsedSVG(control.svg())
  }

  @Test func outputIsDeterministic() {
    #expect(accuracyChart().svg() == accuracyChart().svg())
    #expect(accuracyChart().svg(width: 500, height: 300) == accuracyChart().svg(width: 500, height: 300))
    #expect(overflowChart(logScale: false).svg() == overflowChart(logScale: false).svg())
    #expect(overflowChart(logScale: true).svg() == overflowChart(logScale: true).svg())
  }

  @Test func coordinatesHaveAtMostTwoDecimals() {
    let chart = LineChart(
      title: "sine", xLabel: "x", yLabel: "y",
      series: [PlotSeries(name: "sin", points: PlotSeries.function(sin, from: 0, to: 7, samples: 101))])
    let svg = chart.svg()
    // Every number with a fractional part has at most 2 decimals.
    var decimals = 0
    var maxDecimals = 0
    var inFraction = false
    for ch in svg {
      if inFraction && ch.isNumber {
        decimals += 1
        maxDecimals = max(maxDecimals, decimals)
      } else {
        inFraction = ch == "."
        decimals = 0
      }
    }
    #expect(maxDecimals <= 2, "found a number with \(maxDecimals) decimals")
  }

  @Test func niceTicksForKnownRanges() {
    #expect(niceTicks(min: 0, max: 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
    #expect(niceTicks(min: 0, max: 100) == [0, 20, 40, 60, 80, 100])
    #expect(niceTicks(min: 97.1, max: 99.4) == [97, 97.5, 98, 98.5, 99, 99.5])
    #expect(niceTicks(min: -3, max: 7) == [-4, -2, 0, 2, 4, 6, 8])
    #expect(niceTicks(min: 0.3, max: 0.7) == [0.3, 0.4, 0.5, 0.6, 0.7])
    #expect(niceTicks(min: 4, max: 16) == [4, 6, 8, 10, 12, 14, 16])
    #expect(niceTicks(min: 7, max: -3) == niceTicks(min: -3, max: 7))
    #expect(niceTicks(min: 0, max: 1, maxCount: 3) == [0, 0.5, 1])
    // Equal ends widen to +-10 % (+-1 around 0) and still give several distinct ticks.
    #expect(niceTicks(min: 0, max: 0) == [-1, -0.5, 0, 0.5, 1])
    let five = niceTicks(min: 5, max: 5)
    #expect(five.first! <= 4.5 && five.last! >= 5.5 && five.count >= 4 && five.contains(5), "\(five)")
    // A width too large for a Double falls back to the ends.
    #expect(niceTicks(min: -1e308, max: 1e308) == [-1e308, 1e308])
  }

  @Test func niceTicksAreRoundEvenlySpacedAndCoverRandomRanges() {
    var rng = SeededGenerator(seed: 20240917)
    for trial in 0..<2000 {
      let magnitude = pow(10, Double.random(in: -8...8, using: &rng))
      let a = Double.random(in: -1...1, using: &rng) * magnitude
      let b = a + Double.random(in: 0...3, using: &rng) * magnitude * (trial % 3 == 0 ? 1e-3 : 1)
      let ticks = niceTicks(min: a, max: b)
      let context = "trial \(trial): niceTicks(min: \(a), max: \(b)) = \(ticks)"
      #expect((4...8).contains(ticks.count), "\(context)")
      guard ticks.count >= 2 else { continue }
      let step = ticks[1] - ticks[0]
      // Covers the range (up to the 1e-9-step slack for ends that are multiples up to rounding).
      #expect(ticks.first! <= a + 1e-9 * step && ticks.last! >= b - 1e-9 * step, "\(context)")
      // Evenly spaced.
      for (u, v) in zip(ticks, ticks.dropFirst()) {
        #expect(abs((v - u) - step) <= 1e-6 * step, "\(context)")
      }
      // The step is 1, 2 or 5 x 10^k, and each tick an integer multiple of it (measured against the exact nice
      // step: the difference of two ticks carries their rounding errors).
      let exponent = (log10(step)).rounded(.down)
      let mantissa = (step / pow(10, exponent)).rounded()
      #expect([1.0, 2.0, 5.0, 10.0].contains(mantissa), "\(context): step \(step)")
      let niceStep = mantissa * pow(10, exponent)
      for t in ticks {
        let multiple = t / niceStep
        #expect(abs(multiple - multiple.rounded()) <= 1e-9 * max(1, abs(multiple)), "\(context)")
      }
    }
  }

  @Test func tickLabelsHaveNoRoundingNoise() throws {
    let accuracy = LineChart(
      title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: "s", points: [(1, 97.1), (2, 99.4)])])
    let texts = try ParsedSVG(accuracy.svg()).texts()
    for label in ["97", "97.5", "99.5"] { #expect(texts.contains(label), "missing \(label) in \(texts)") }
    #expect(!texts.contains("97.0") && !texts.contains("99.50"))

    let tenths = LineChart(
      title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: "s", points: [(0, 0.1), (0.3, 0.7)])])
    let tenthTexts = try ParsedSVG(tenths.svg()).texts()
    #expect(tenthTexts.contains("0.3") && tenthTexts.contains("0.1"), "\(tenthTexts)")
    #expect(!tenthTexts.contains { $0.count > 4 }, "\(tenthTexts)")

    let big = LineChart(
      title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: "s", points: [(0, 0), (1, 3e6)])])
    let bigTexts = try ParsedSVG(big.svg()).texts()
    #expect(bigTexts.contains("1e6") && bigTexts.contains("3e6") && bigTexts.contains("0"), "\(bigTexts)")

    // Exponent labels keep enough digits to tell neighbouring ticks apart.
    let close = LineChart(
      title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: "s", points: [(0, 1_000_000), (1, 1_000_003)])])
    let closeTexts = try ParsedSVG(close.svg()).texts()
    #expect(closeTexts.contains("1.0000005e6") && closeTexts.contains("1.000003e6"), "\(closeTexts)")
  }

  @Test func nonFinitePointsAreSkippedAndBreakTheLine() throws {
    let chart = LineChart(
      title: "gaps", xLabel: "", yLabel: "",
      series: [
        PlotSeries(name: "gap in y", points: [(0, 1), (1, 2), (2, .nan), (3, 4), (4, 5)]),
        PlotSeries(name: "gap in x", points: [(0, 2), (.infinity, 3), (2, 1), (3, 2)]),
        PlotSeries(name: "clean", points: [(0, 3), (1, 3), (4, 1)]),
      ])
    let svg = chart.svg()
    let parsed = try ParsedSVG(svg)
    let moves = try (0..<3).map { try parsed.seriesPath($0)?.filter { $0 == "M" }.count }
    #expect(moves == [2, 1, 1], "moves per series: \(moves)")
    // The "gap in x" line has one segment (2 points after the break); markers on all finite points.
    #expect(try parsed.seriesPath(1)?.filter { $0 == "L" }.count == 1)
    #expect(try parsed.circles(inSeries: 0) == 4)
    expectNoNonFiniteNumbers(svg)
  }

  @Test func dataOutsideAFixedRangeAreClippedToThePlot() throws {
    let chart = LineChart(
      title: "clipped", xLabel: "x", yLabel: "y",
      series: [PlotSeries(name: "spiky", points: [(0, 0.5), (1, 100), (2, -1e300), (3, 0.5)])], yRange: 0...1)
    let svg = chart.svg()
    let points = try ParsedSVG(svg).pathPoints()
    #expect(!points.isEmpty)
    for (x, y) in points { #expect((0...720).contains(x) && (0...440).contains(y), "point (\(x), \(y)) outside") }
    // Markers only for the two points inside the range (the legend has one more).
    #expect(try ParsedSVG(svg).circles(inSeries: 0) == 2)
  }

  @Test(arguments: [
    ("no series", plain([])),
    ("series without points", plain([PlotSeries(name: "none", points: [])])),
    ("one point", plain([PlotSeries(name: "one", points: [(3, 7)])])),
    ("one point, no markers", plain([PlotSeries(name: "one", points: [(3, 7)])], markers: false)),
    ("all y equal", plain([PlotSeries(name: "flat", points: [(0, 2), (1, 2), (2, 2)])])),
    ("all zero", plain([PlotSeries(name: "zero", points: [(0, 0), (0, 0)])])),
    ("only non-finite", plain([PlotSeries(name: "bad", points: [(.nan, 1), (1, .infinity)])])),
    ("huge values", plain([PlotSeries(name: "huge", points: [(0, -1e300), (1, 1e300), (2, 1.7e308)])])),
    ("tiny range", plain([PlotSeries(name: "tiny", points: [(0, 1), (1, 1 + 1e-14)])])),
    ("explicit ticks with NaN", plain(twoPoints, xTicks: [.nan, 1, 2, 2, .infinity])),
    ("empty explicit ticks", plain(twoPoints, xTicks: [])),
    ("zero-width y range", plain(twoPoints, yRange: 5...5)),
    ("infinite y range", plain(twoPoints, yRange: -Double.infinity...Double.infinity)),
    (
      "long names",
      LineChart(
        title: String(repeating: "Title ", count: 60), xLabel: String(repeating: "x", count: 300),
        yLabel: String(repeating: "y", count: 300),
        series: [PlotSeries(name: String(repeating: "very long series name ", count: 20), points: [(0, 1), (1, 2)])])
    ),
    ("many series", plain((0..<40).map { PlotSeries(name: "series \($0)", points: [(0, Double($0)), (1, 1)]) })),
  ])
  func lineChartEdgeCasesRenderWellFormed(_ name: String, _ chart: LineChart) throws {
    for (width, height) in [(720, 440), (200, 150)] {
      let svg = chart.svg(width: width, height: height)
      let parsed = try ParsedSVG(svg)
      #expect(try parsed.texts().count >= 2, "\(name): no tick labels")
      expectNoNonFiniteNumbers(svg)
    }
  }

  @Test func edgeCaseDetails() throws {
    // All y equal: at least two distinct y tick labels around the value.
    let flat = try ParsedSVG(
      LineChart(title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: "flat", points: [(0, 2), (1, 2)])]).svg()
    ).texts()
    #expect(flat.contains("1.8") && flat.contains("2.2"), "\(flat)")
    // Nothing to plot says so.
    #expect(try ParsedSVG(LineChart(title: "", xLabel: "", yLabel: "", series: []).svg()).texts().contains("no data"))
    // A lone point without markers still gets a dot.
    let lone = LineChart(
      title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: "one", points: [(3, 7)])], markers: false)
    #expect(try ParsedSVG(lone.svg()).values("//*[local-name()='circle']").count == 1)
    // A long name is cut in the legend, and kept whole in the tooltip.
    let longName = String(repeating: "very long series name ", count: 20)
    let long = try ParsedSVG(
      LineChart(title: "", xLabel: "", yLabel: "", series: [PlotSeries(name: longName, points: [(0, 1)])]).svg())
    #expect(try long.texts().contains { $0.hasSuffix("…") && $0.count < 60 })
    #expect(try long.values("//*[local-name()='title']").contains(longName))
    // Too many series for the legend's height: the rest are counted.
    let many = LineChart(
      title: "", xLabel: "", yLabel: "",
      series: (0..<40).map { PlotSeries(name: "s\($0)", points: [(0, Double($0))]) })
    #expect(try ParsedSVG(many.svg()).texts().contains { $0.hasPrefix("+") && $0.hasSuffix(" more") })
  }

  @Test(arguments: [
    ("no categories", bars([], [("a", [])])),
    ("no series", bars(["a", "b"], [])),
    ("all zero", bars(["a", "b"], [("s", [0, 0])])),
    ("all zero, log", bars(["a", "b"], [("s", [0, 0])], logScale: true)),
    ("non-finite", bars(["a", "b", "c"], [("s", [.nan, .infinity, 2])])),
    ("negative, log", bars(["a", "b"], [("s", [-5, 3e7])], logScale: true)),
    ("wide log range", bars(["a", "b"], [("s", [1e-30, 1e30])], logScale: true)),
    (
      "many categories",
      bars(
        (0..<60).map { "layer\($0).conv" },
        [("before", (0..<60).map { Double($0) }), ("after", (0..<60).map { Double($0) / 2 })])
    ),
    ("long categories", bars([String(repeating: "long category ", count: 30), "b"], [("s", [1, 2])])),
    ("many series", bars(["a", "b"], (0..<12).map { ("series \($0)", [Double($0), 1]) })),
  ])
  func barChartEdgeCasesRenderWellFormed(_ name: String, _ chart: BarChart) throws {
    for (width, height) in [(720, 440), (200, 150)] {
      let svg = chart.svg(width: width, height: height)
      #expect(try ParsedSVG(svg).texts().count >= 2, "\(name): no tick labels")
      expectNoNonFiniteNumbers(svg)
      #expect(try ParsedSVG(svg).pathPoints().allSatisfy { $0.0 >= 0 && $0.1 >= 0 })
    }
  }

  @Test func manyCategoriesRotateTheirLabels() throws {
    let chart = BarChart(
      title: "t", yLabel: "y", categories: (0..<16).map { "layer\($0).conv" },
      series: [("s", Array(repeating: 1, count: 16))])
    let svg = chart.svg()
    #expect(svg.contains("transform=\"rotate(-45 "))
    let texts = try ParsedSVG(svg).texts()
    #expect(texts.contains("layer0.conv") && texts.contains("layer15.conv"))
    // Few short categories stay horizontal.
    #expect(!overflowChart(logScale: false).svg().contains("rotate(-45"))
  }

  @Test func functionSamplesIncludeBothEnds() {
    let points = PlotSeries.function({ $0 * $0 }, from: -1, to: 0.3, samples: 14)
    #expect(points.count == 14)
    #expect(points.first! == (-1, 1))
    #expect(points.last!.0 == 0.3 && points.last!.1 == 0.3 * 0.3)
    #expect(zip(points, points.dropFirst()).allSatisfy { $0.0 < $1.0 })
    #expect(PlotSeries.function({ $0 + 1 }, from: 2, to: 5, samples: 1).map(\.1) == [3])
  }

  @Test func seriesPointsRoundTripAndNaNCompareEqual() {
    var s = PlotSeries(name: "s", points: [(1, 2), (3, .nan)])
    #expect(s.xs == [1, 3] && s.ys.count == 2)
    #expect(s == PlotSeries(name: "s", xs: [1, 3], ys: [2, .nan]))
    #expect(s != PlotSeries(name: "s", xs: [1, 3], ys: [2, 4]))
    s.points = [(x: 5, y: 6)]
    #expect(s.xs == [5] && s.ys == [6] && s.points.count == 1 && s.points[0].y == 6)
  }

  /// Renders the example charts of the report; with WRAPNET_SVG_EXAMPLES=<dir> also writes them there as .svg, for
  /// looking at them (e.g. `rsvg-convert -o line.png line.svg`).
  @Test func exampleCharts() throws {
    let cyclic = Accumulator(width: AccumulatorWidth(bits: 4), mode: .cyclic, slope: 2)
    let shape = PlotSeries.function({ Double(cyclic.apply(Float($0))) }, from: -20, to: 20, samples: 801)
    // The wrap jumps by 2^b at z = 8 + 16n: a NaN point between the two sides breaks the line there instead of
    // drawing a vertical segment.
    var wrapShape: [(Double, Double)] = []
    for (x, y) in PlotSeries.function({ Double(Float($0).wrapped(toBits: 4)) }, from: -20, to: 20, samples: 801) {
      if let last = wrapShape.last, abs(y - last.1) > 8 { wrapShape.append(((x + last.0) / 2, .nan)) }
      wrapShape.append((x, y))
    }
    let examples: [(String, String)] = [
      ("line-accuracy", accuracyChart().svg()),
      (
        "line-cyclic",
        LineChart(
          title: "Cyclic activation, 4-bit accumulator, slope 2", xLabel: "exact sum z", yLabel: "output",
          series: [
            PlotSeries(name: "exact z", points: [(-20, -20), (20, 20)], dashed: true),
            PlotSeries(name: "wrap_4(z)", points: wrapShape),
            PlotSeries(name: "f_2(wrap_4(z))", points: shape),
          ], yRange: -10...10, markers: false
        ).svg()
      ),
      ("bar-overflows", overflowChart(logScale: false).svg()),
      ("bar-overflows-log", overflowChart(logScale: true).svg()),
      (
        "bar-many",
        BarChart(
          title: "Weights per layer", yLabel: "parameters",
          categories: (1...14).map { "block\($0).conv\($0 % 2 + 1)" },
          series: [("ternary", (1...14).map { Double($0 * $0 * 1000) }), ("8-bit", (1...14).map { Double($0 * 900) })]
        ).svg()
      ),
    ]
    for (name, svg) in examples {
      #expect(throws: Never.self, "\(name) is not well-formed") { try ParsedSVG(svg) }
      expectNoNonFiniteNumbers(svg)
    }
    if let dir = ProcessInfo.processInfo.environment["WRAPNET_SVG_EXAMPLES"] {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      for (name, svg) in examples {
        try svg.write(toFile: dir + "/" + name + ".svg", atomically: true, encoding: .utf8)
      }
    }
  }
}
