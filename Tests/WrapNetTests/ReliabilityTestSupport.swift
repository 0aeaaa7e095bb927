import Foundation
import Testing
import WrapNet
import WrapNetTestSupport

/// Writes `syntheticDataset` train and test splits as an MNIST directory (`DIR/mnist/*.gz`, the official names)
/// so that command-line tests can train without the real dataset. Returns the data directory.
@discardableResult
func writeSyntheticMNIST(in dir: TemporaryDirectory, train: Int = 96, test: Int = 40) throws -> String {
  let splits = [syntheticDataset(count: train, seed: 21), syntheticDataset(count: test, seed: 22)]
  let names = DatasetName.idxFileNames
  for (i, split) in splits.enumerated() {
    let images = IDXArray(dimensions: [split.count, 28, 28], bytes: split.images)
    try dir.write(Gzip.compress(images.encoded()), to: "data/mnist/" + names[2 * i])
    try dir.write(Gzip.compress(idxLabels(split.labels).encoded()), to: "data/mnist/" + names[2 * i + 1])
  }
  return dir.file("data")
}

/// `wrapnet ARGS` must fail cleanly: exit status 1, `fragment` in stderr, and no trap.
func expectCleanFailure(_ arguments: [String], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation)
  throws
{
  let (status, _, err) = try runWrapnet(arguments)
  #expect(status == 1, "should fail with status 1: \(arguments), got \(status)", sourceLocation: sourceLocation)
  #expect(status < 128 && !err.contains("Fatal error"), "must not crash: \(err)", sourceLocation: sourceLocation)
  #expect(err.contains(fragment), "stderr should mention '\(fragment)': \(err)", sourceLocation: sourceLocation)
}

/// The bytes of a file (empty when it is missing).
func fileBytes(_ path: String) -> [UInt8] {
  (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
}

/// Trains the first epoch of a 2-epoch run on `images` and writes its resume file (Adam state, `epochs_done` 1) to
/// `path`; `stored` edits the options written (an absurd learning rate for the rest of the run, say).
func writeResumeCheckpoint(
  to path: String, architecture: String = "mlp", images: ImageDataset, batchSize: Int,
  stored: (inout TrainingOptions) -> Void = { _ in }
) throws {
  var options = TrainingOptions()
  options.epochs = 2
  options.batchSize = batchSize
  var trainer = try Trainer(
    model: try WrapModel(config: ModelConfig(architecture: architecture), seed: 1), options: options, train: images)
  _ = try trainer.trainEpoch()
  stored(&options)
  try Checkpoint.save(
    &trainer.model, to: path, training: options, optimizerState: trainer.optimizer.stateTensors(), epochsDone: 1,
    history: "[]")
}
