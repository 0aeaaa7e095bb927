import Testing
import WrapNet

@Suite struct TensorTests {
  @Test func reshapeKeepsElements() {
    let t = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
    let r = t.reshaped([3, 2])
    #expect(r.shape == [3, 2])
    #expect(r.data == t.data)
    #expect(r.count == 6 && r.rank == 2)
  }
}
