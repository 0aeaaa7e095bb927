import Testing
import WrapNet
import WrapNetEngine

/// The layer shapes and computed sizes `wrapnet bench` reports.
@Suite struct ModelShapesTests {
  /// The low-bit GEMM shapes: m = output channels, k = fan-in, n = Ho·Wo·batch.
  @Test func lowBitGEMMShapes() throws {
    var cnn = try WrapModel(config: ModelConfig(architecture: "cnn"), seed: 1)
    #expect(
      cnn.lowBitGEMMShapes(batch: 2) == [
        LayerGEMMShape(layer: "conv2", m: 32, n: 14 * 14 * 2, k: 16 * 9),
        LayerGEMMShape(layer: "conv3", m: 64, n: 14 * 14 * 2, k: 32 * 9),
        LayerGEMMShape(layer: "conv4", m: 64, n: 7 * 7 * 2, k: 64 * 9),
      ])
    var mlp = try WrapModel(config: ModelConfig(architecture: "mlp"), seed: 1)
    #expect(mlp.lowBitGEMMShapes(batch: 1).map(\.layer) == ["fc2", "fc3", "fc4"])
    #expect(mlp.lowBitGEMMShapes(batch: 1).allSatisfy { $0.m == 1024 && $0.n == 1 && $0.k == 1024 })
    var resnet = try WrapModel(
      config: ModelConfig(architecture: "resnet20", inputChannels: 3, inputHeight: 32, inputWidth: 32), seed: 1)
    let shapes = resnet.lowBitGEMMShapes(batch: 1)
    #expect(shapes.count == 18)
    #expect(shapes.first == LayerGEMMShape(layer: "stage1.block1.conv1", m: 16, n: 32 * 32, k: 16 * 9))
    #expect(
      shapes.first { $0.layer == "stage2.block1.conv1" }
        == LayerGEMMShape(layer: "stage2.block1.conv1", m: 32, n: 16 * 16, k: 16 * 9))
    #expect(shapes.last == LayerGEMMShape(layer: "stage3.block3.conv2", m: 64, n: 8 * 8, k: 64 * 9))
    // The macs agree with the model's own count.
    #expect(shapes.reduce(0) { $0 + $1.macs } == resnet.macCounts().lowBit)
  }

  /// The computed packed size equals the exporter's tensors byte for byte where the exporter can run.
  @Test(arguments: ["mlp", "cnn", "resnet20"], [1, 2])
  func computedSizeMatchesExporter(architecture: String, weightBits: Int) throws {
    let colour = architecture == "resnet20"
    var model = try WrapModel(
      config: ModelConfig(
        architecture: architecture, inputChannels: colour ? 3 : 1, inputHeight: colour ? 32 : 28,
        inputWidth: colour ? 32 : 28, weightBits: weightBits), seed: 3)
    let file = try EngineExport.packedFile(for: model)
    let tensorBytes = file.tensors.values.reduce(0) { $0 + $1.bytes.count }
    #expect(model.packedSizeEstimate().totalBytes == tensorBytes)
    let codes = file.tensors.filter { $0.key.hasSuffix(".weight_codes") }.values.reduce(0) { $0 + $1.bytes.count }
    #expect(model.packedSizeEstimate().weightCodeBytes == codes)
  }
}
