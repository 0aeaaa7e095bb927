import Testing
import WrapNetEngine

/// Public entry points reject out-of-range widths and shapes (each check runs in a child process).
@Suite struct ArithmeticPreconditionTests {
  @Test func rejectsUnsupportedWidths() async {
    await #expect(processExitsWith: .failure) { _ = Int32(5).wrapped(toBits: 33) }
    await #expect(processExitsWith: .failure) { _ = Float(5).saturated(toBits: 1) }
    await #expect(processExitsWith: .failure) { _ = CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 0) }
    await #expect(processExitsWith: .failure) { _ = CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 0.5)(Int32(3)) }
  }

  @Test func rejectsMismatchedShapes() async {
    await #expect(processExitsWith: .failure) {
      _ = BinaryQuantizer().quantize([1, 2, 3], outChannels: 2, fanIn: 2)
    }
    await #expect(processExitsWith: .failure) {
      _ = UnsignedActivationQuantizer(bits: 4, clip: 1).backward(gradient: [1], input: [1, 2])
    }
  }
}
