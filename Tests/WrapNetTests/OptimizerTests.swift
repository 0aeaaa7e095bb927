import Testing
import WrapNet
import WrapNetEngine

/// A minimal layer with two named parameters, to drive `Optimizer.step(_: inout Layer)`.
private struct TwoParameterLayer: Layer {
  var weight: Tensor
  var bias: Tensor
  var weightGrad: Tensor
  var biasGrad: Tensor

  init(weight: [Float], bias: [Float]) {
    self.weight = Tensor(shape: [weight.count], data: weight)
    self.bias = Tensor(shape: [bias.count], data: bias)
    weightGrad = Tensor(shape: [weight.count])
    biasGrad = Tensor(shape: [bias.count])
  }

  mutating func forward(_ input: Tensor, phase: Phase) -> Tensor { input }
  mutating func backward(_ gradOutput: Tensor) -> Tensor { gradOutput }
  mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    visit("weight", &weight, &weightGrad)
    visit("bias", &bias, &biasGrad)
  }
}

private func expectClose(_ a: [Float], _ b: [Double], tolerance: Double = 2e-6, _ what: String = "") {
  #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) elements")
  for (x, y) in zip(a, b) {
    #expect(abs(Double(x) - y) <= tolerance * max(1, abs(y)), "\(what): got \(a), expected \(b)")
  }
}

@Suite struct OptimizerTests {
  // Parameter w0 = [1, -2]; gradients per step: g1 = [0.5, 0.25], g2 = [-1, 0.5], g3 = [0.2, -0.3].
  static let gradients: [[Float]] = [[0.5, 0.25], [-1, 0.5], [0.2, -0.3]]

  private func run<O: Optimizer>(_ optimizer: inout O, steps: Int) -> [[Float]] {
    var w = Tensor(shape: [2], data: [1, -2])
    var trajectory: [[Float]] = []
    for s in 0..<steps {
      optimizer.update(
        name: "w", value: &w, gradient: Tensor(shape: [2], data: Self.gradients[s]),
        learningRate: optimizer.learningRate)
      trajectory.append(w.data)
    }
    return trajectory
  }

  @Test func sgdMomentumWeightDecayMatchesPyTorchFormula() {
    // lr 0.1, m 0.9, wd 0.01.
    // step 1: g = [0.5 + 0.01*1, 0.25 + 0.01*(-2)] = [0.51, 0.23]; buf = g; w = w - 0.1*buf = [0.949, -2.023]
    // step 2: g = [-1 + 0.00949, 0.5 - 0.02023] = [-0.99051, 0.47977]; buf = 0.9*[0.51, 0.23] + g
    //         = [-0.53151, 0.68677]; w = [0.949 + 0.053151, -2.023 - 0.068677] = [1.002151, -2.091677]
    var sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
    let t = run(&sgd, steps: 2)
    expectClose(t[0], [0.949, -2.023], "step 1")
    expectClose(t[1], [1.002151, -2.091677], "step 2")
  }

  @Test func sgdNesterovMatchesPyTorchFormula() {
    // step 1: g = [0.51, 0.23], buf = g, d = g + 0.9*buf = 1.9*g = [0.969, 0.437]; w = [0.9031, -2.0437]
    // step 2: g = [-1 + 0.009031, 0.5 - 0.020437] = [-0.990969, 0.479563]
    //         buf = [0.459 - 0.990969, 0.207 + 0.479563] = [-0.531969, 0.686563]
    //         d = g + 0.9*buf = [-1.4697411, 1.0974697]; w = [1.05007411, -2.15344697]
    var sgd = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01)
    let t = run(&sgd, steps: 2)
    expectClose(t[0], [0.9031, -2.0437], "step 1")
    expectClose(t[1], [1.05007411, -2.15344697], "step 2")
  }

  @Test func plainSGDKeepsNoState() {
    // w = w - lr * g: [1 - 0.5*0.5, -2 - 0.5*0.25] = [0.75, -2.125]
    var sgd = SGD(learningRate: 0.5)
    let t = run(&sgd, steps: 1)
    expectClose(t[0], [0.75, -2.125])
    #expect(sgd.stateTensors().isEmpty)
  }

  @Test func adamMatchesPyTorchFormula() {
    // lr 0.01, b1 0.9, b2 0.999, eps 1e-8, wd 0.1 (L2: g = grad + 0.1*w).
    // step 1: g = [0.6, 0.05]; m = 0.1*g; v = 0.001*g^2; m/(1-0.9) = g, sqrt(v/(1-0.999)) = |g|
    //         => w = w - 0.01 * g / (|g| + 1e-8) = [0.99, -2.01] (to 1e-9)
    // steps 2, 3 from the same formula with t = 2, 3 (bias corrections 1 - 0.9^t, 1 - 0.999^t):
    var adam = Adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
    let t = run(&adam, steps: 3)
    expectClose(t[0], [0.9900000001666667, -2.0099999980000005], "step 1")
    expectClose(t[1], [0.9924819887658624, -2.0184441687579735], "step 2")
    expectClose(t[2], [0.9926279837468459, -2.0163492513359342], "step 3")
  }

  @Test func adamWDecouplesWeightDecay() {
    // step 1: w = w * (1 - 0.01*0.1) = [0.999, -1.998]; then w -= 0.01 * sign(g) => [0.989, -2.008]
    var adamw = Adam(
      learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, decoupledWeightDecay: true)
    let t = run(&adamw, steps: 3)
    expectClose(t[0], [0.9890000002, -2.0079999996], "step 1")
    expectClose(t[1], [0.9916720354238566, -2.0156438196144806], "step 2")
    expectClose(t[2], [0.9923405385380873, -2.017179192307451], "step 3")
  }

  /// f(w) = 0.5 * sum a_i (w_i - c_i)^2, gradient a * (w - c); the minimum is w = c.
  private func minimiseQuadratic<O: Optimizer>(_ optimizer: inout O, steps: Int) -> [Float] {
    let a: [Float] = [1, 4, 0.5, 2]
    let c: [Float] = [3, -1, 0.5, 2]
    var layer = TwoParameterLayer(weight: [0, 0], bias: [0, 0])
    for _ in 0..<steps {
      layer.zeroGradients()
      for i in 0..<2 {
        layer.weightGrad.data[i] += a[i] * (layer.weight.data[i] - c[i])
        layer.biasGrad.data[i] += a[i + 2] * (layer.bias.data[i] - c[i + 2])
      }
      optimizer.step(&layer)
    }
    return layer.weight.data + layer.bias.data
  }

  @Test func sgdMomentumMinimisesQuadratic() {
    var sgd = SGD(learningRate: 0.1, momentum: 0.9)
    expectClose(minimiseQuadratic(&sgd, steps: 300), [3, -1, 0.5, 2], tolerance: 1e-4)
  }

  @Test func adamMinimisesQuadratic() {
    var adam = Adam(learningRate: 0.05)
    expectClose(minimiseQuadratic(&adam, steps: 1500), [3, -1, 0.5, 2], tolerance: 1e-2)
  }

  @Test func closureStepVisitsEveryParameter() {
    var first = TwoParameterLayer(weight: [1], bias: [2])
    var second = TwoParameterLayer(weight: [3], bias: [4])
    first.weightGrad.data = [1]
    second.biasGrad.data = [-1]
    var sgd = SGD(learningRate: 0.5)
    sgd.step { visit in
      first.visitParameters { name, value, grad in visit("first." + name, &value, &grad) }
      second.visitParameters { name, value, grad in visit("second." + name, &value, &grad) }
    }
    #expect(first.weight.data == [0.5] && first.bias.data == [2])
    #expect(second.weight.data == [3] && second.bias.data == [4.5])
    #expect(first.weightGrad.data == [1], "gradients are left for zeroGradients()")
  }

  @Test func stateRoundTripResumesExactly() throws {
    // Two optimizers: one runs three steps; the other runs two, saves its state through a safetensors file's
    // bytes, is rebuilt from it and runs the third. Both must end bit-identical.
    for makeOptimizer in [
      { () -> any Optimizer in Adam(learningRate: 0.01, weightDecay: 0.1) },
      { () -> any Optimizer in SGD(learningRate: 0.1, momentum: 0.9, nesterov: true) },
    ] {
      var reference = makeOptimizer()
      var straight = TwoParameterLayer(weight: [1, -2], bias: [0.5])
      var resumed = straight
      var interrupted = makeOptimizer()
      for s in 0..<3 {
        straight.weightGrad.data = Self.gradients[s]
        straight.biasGrad.data = [Float(s) - 0.7]
        reference.step(&straight)
      }
      for s in 0..<2 {
        resumed.weightGrad.data = Self.gradients[s]
        resumed.biasGrad.data = [Float(s) - 0.7]
        interrupted.step(&resumed)
      }
      let state = interrupted.stateTensors()
      // Saved next to a model parameter and an integer tensor, as a checkpoint would be.
      var all = state
      all["model.weight"] = straight.weight
      var file = SafeTensorsFile(floatTensors: all, metadata: ["step": "2"])
      file.tensors["model.codes"] = SafeTensor(shape: [1], values: [Int8(3)])
      let reread = try SafeTensorsFile(bytes: file.serialized())
      var restored = makeOptimizer()
      let prefix = reread.floatTensors(withPrefix: "adam.").isEmpty ? "sgd." : "adam."
      try restored.loadState(reread.floatTensors(withPrefix: prefix))
      #expect(restored.stateTensors() == state)
      resumed.weightGrad.data = Self.gradients[2]
      resumed.biasGrad.data = [2 - 0.7]
      restored.step(&resumed)
      #expect(resumed.weight == straight.weight && resumed.bias == straight.bias)
    }
  }

  @Test func adamStateNamesAndStepCount() {
    var adam = Adam()
    var layer = TwoParameterLayer(weight: [1, 2], bias: [3])
    adam.step(&layer)
    adam.step(&layer)
    let state = adam.stateTensors()
    #expect(
      Set(state.keys)
        == ["adam.m.weight", "adam.v.weight", "adam.step.weight", "adam.m.bias", "adam.v.bias", "adam.step.bias"])
    #expect(state["adam.step.weight"] == Tensor(shape: [], data: [2]))
    #expect(state["adam.m.weight"]?.shape == [2])
  }

  @Test func loadStateRejectsForeignOrBrokenState() {
    var sgd = SGD(learningRate: 0.1, momentum: 0.9)
    #expect(throws: OptimizerStateError.self) {
      try sgd.loadState(["adam.m.w": Tensor(shape: [1])])
    }
    var adam = Adam()
    #expect(throws: OptimizerStateError.self) {
      try adam.loadState(["adam.m.w": Tensor(shape: [1]), "adam.v.w": Tensor(shape: [1])])
    }
    #expect(throws: OptimizerStateError.self) {
      try adam.loadState([
        "adam.m.w": Tensor(shape: [1]), "adam.v.w": Tensor(shape: [1]), "adam.step.w": Tensor(shape: [], data: [1.5]),
      ])
    }
    #expect(throws: OptimizerStateError.self) {
      try adam.loadState(["sgd.momentum.w": Tensor(shape: [1])])
    }
  }
}
