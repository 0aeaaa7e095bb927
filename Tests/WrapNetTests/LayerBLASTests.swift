import Testing
import WrapNet

@Suite struct LayerBLASTests {
  static let sizes = [1, 3, 5, 17, 33]
  static let transposes: [(BLASTranspose, BLASTranspose)] = [
    (.none, .none), (.none, .transpose), (.transpose, .none), (.transpose, .transpose),
  ]

  /// Integer-valued operands keep every sum exact in Float32 and Float64, so both wrappers must *equal* the
  /// naive triple loop, for every size combination, every transpose pair and β ∈ {0, 1}.
  @Test func gemmEqualsNaiveOnIntegers() {
    var rng = LayerTestRNG(seed: 7)
    for m in Self.sizes {
      for n in Self.sizes {
        for k in Self.sizes {
          for (ta, tb) in Self.transposes {
            let a = (0..<(m * k)).map { _ in Double(rng.int(-8, 8)) }
            let b = (0..<(k * n)).map { _ in Double(rng.int(-8, 8)) }
            let c = (0..<(m * n)).map { _ in Double(rng.int(-8, 8)) }
            for beta in [0.0, 1.0] {
              let want = layerNaiveGEMM(
                transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: a, b: b, beta: beta, c: c)
              var cd = c
              dgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, b: b, beta: beta, c: &cd)
              var cs = c.map { Float($0) }
              sgemm(
                transA: ta, transB: tb, m: m, n: n, k: k, a: a.map { Float($0) }, b: b.map { Float($0) },
                beta: Float(beta),
                c: &cs)
              if cd != want || cs.map({ Double($0) }) != want {
                Issue.record("gemm m=\(m) n=\(n) k=\(k) \(ta)/\(tb) beta=\(beta) differs from the naive loop")
                return
              }
            }
          }
        }
      }
    }
  }

  /// Fractional data with α, β ≠ 0, 1: close to the Float64 reference (sgemm within Float32 rounding).
  @Test func gemmAlphaBetaFractional() {
    var rng = LayerTestRNG(seed: 8)
    for (ta, tb) in Self.transposes {
      let (m, n, k) = (17, 5, 33)
      let a = (0..<(m * k)).map { _ in Double(rng.float(-1, 1)) }
      let b = (0..<(k * n)).map { _ in Double(rng.float(-1, 1)) }
      let c = (0..<(m * n)).map { _ in Double(rng.float(-1, 1)) }
      let want = layerNaiveGEMM(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: -2, c: c)
      var cd = c
      dgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: -2, c: &cd)
      // Float64 reference in the same data: only summation-order rounding.
      let af = a.map { Double(Float($0)) }
      let bf = b.map { Double(Float($0)) }
      let cf = c.map { Double(Float($0)) }
      let wantF = layerNaiveGEMM(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: af, b: bf, beta: -2, c: cf)
      var cs = c.map { Float($0) }
      sgemm(
        transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a.map { Float($0) }, b: b.map { Float($0) }, beta: -2,
        c: &cs)
      for i in 0..<(m * n) {
        #expect(abs(cd[i] - want[i]) <= 1e-12, "dgemm \(ta)/\(tb) [\(i)]")
        #expect(abs(Double(cs[i]) - wantF[i]) <= 1e-5, "sgemm \(ta)/\(tb) [\(i)]")
      }
    }
  }

  /// k = 0 yields β·C (BLAS itself may skip the update).
  @Test func gemmEmptyReduction() {
    var c: [Float] = [1, 2, 3, 4]
    sgemm(transA: .none, transB: .none, m: 2, n: 2, k: 0, a: [], b: [], beta: 3, c: &c)
    #expect(c == [3, 6, 9, 12])
    var d: [Double] = [1, 2]
    dgemm(transA: .transpose, transB: .none, m: 1, n: 2, k: 0, a: [], b: [], beta: 0, c: &d)
    #expect(d == [0, 0])
  }

  /// Shapes that take each branch of the wrappers' partition (column blocks, row blocks, reduction blocks with a
  /// fixed-order sum): exact on integers, and bitwise identical for 1, 2 and 3 threads on fractional data.
  @Test(arguments: [(3, 1100, 400), (200, 5, 1100), (5, 7, 40000)])
  func partitionedProducts(m: Int, n: Int, k: Int) {
    var rng = LayerTestRNG(seed: UInt64(m * 7 + n * 3 + k))
    // One data set for all transpose pairs (a transpose only changes how the same storage is read).
    let a = (0..<(m * k)).map { _ in Double(rng.int(-3, 3)) }
    let b = (0..<(k * n)).map { _ in Double(rng.int(-3, 3)) }
    let c = (0..<(m * n)).map { _ in Double(rng.int(-3, 3)) }
    let (af, bf, cf) = (a.map { Float($0) }, b.map { Float($0) }, c.map { Float($0) })
    for (ta, tb) in Self.transposes {
      let want = layerNaiveGEMM(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: a, b: b, beta: 1, c: c)
      var cs = cf
      sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: af, b: bf, beta: 1, c: &cs)
      #expect(zip(cs, want).allSatisfy { Double($0) == $1 }, "sgemm \(m)x\(n)x\(k) \(ta)/\(tb) on integers")
      var cd = c
      dgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a, b: b, beta: 1, c: &cd)
      #expect(cd == want, "dgemm \(m)x\(n)x\(k) \(ta)/\(tb) on integers")
    }
    let fa = (0..<(m * k)).map { _ in rng.float(-1, 1) }
    let fb = (0..<(k * n)).map { _ in rng.float(-1, 1) }
    let saved = blasThreads()
    var results: [[UInt32]] = []
    for threads in 1...3 {
      setBLASThreads(threads)
      var c = [Float](repeating: 0.5, count: m * n)
      sgemm(transA: .none, transB: .none, m: m, n: n, k: k, alpha: 0.75, a: fa, b: fb, beta: 1, c: &c)
      results.append(c.map(\.bitPattern))
    }
    setBLASThreads(saved)
    #expect(results[0] == results[1] && results[0] == results[2], "sgemm \(m)x\(n)x\(k) depends on the thread count")
  }
}
