import CWrapNetTraining
import Foundation

/// An optimizer: updates each named parameter from its gradient, keeping per-parameter state keyed by name.
///
/// A protocol because the trainer picks SGD or Adam at run time (`any Optimizer`). Conformers follow PyTorch's
/// update rules exactly, so hyper-parameters carry over from papers.
///
/// Gradients are read, never cleared: call `Layer.zeroGradients()` before the next backward pass.
public protocol Optimizer: Sendable {
  /// The learning rate used when `step`/`update` is called without an explicit one.
  var learningRate: Float { get set }

  /// Applies one update to `value` (any shape) from `gradient` (same shape), using and advancing the state kept
  /// under `name`. Precondition: `value.shape == gradient.shape`, and both match the shape of any state already
  /// held for `name`.
  mutating func update(name: String, value: inout Tensor, gradient: Tensor, learningRate: Float)

  /// The optimizer state as named tensors, ready for a checkpoint (e.g. a safetensors file); keys are prefixed by
  /// the optimizer kind ("sgd.", "adam.") and end with the parameter name.
  func stateTensors() -> [String: Tensor]

  /// Replaces the state with one produced by `stateTensors()` (for `--resume`).
  /// Throws `OptimizerStateError` when a key does not belong to this optimizer or a value is malformed.
  mutating func loadState(_ tensors: [String: Tensor]) throws
}

extension Optimizer {
  /// Updates every parameter of `model` (visited with `visitParameters`) at `learningRate`
  /// (default: `self.learningRate`). Gradients are left as they are.
  public mutating func step<L: Layer>(_ model: inout L, learningRate: Float? = nil) {
    let lr = learningRate ?? self.learningRate
    model.visitParameters { name, value, gradient in
      self.update(name: name, value: &value, gradient: gradient, learningRate: lr)
    }
  }

  /// Updates every parameter that `visitParameters` presents, for models that are not a single `Layer`:
  /// `optimizer.step { visit in encoder.visitParameters(visit); head.visitParameters(visit) }`.
  /// Parameter names must be unique across everything visited.
  public mutating func step(
    learningRate: Float? = nil, _ visitParameters: ((String, inout Tensor, inout Tensor) -> Void) -> Void
  ) {
    let lr = learningRate ?? self.learningRate
    visitParameters { name, value, gradient in
      self.update(name: name, value: &value, gradient: gradient, learningRate: lr)
    }
  }
}

/// A problem with optimizer state given to `loadState` (usually a checkpoint from another optimizer or model).
public struct OptimizerStateError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What was wrong and what to do about it.
  public var description: String
  /// An error with the given message.
  public init(_ description: String) { self.description = description }
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay (PyTorch `SGD`, no
/// dampening).
///
/// Per element, with lr = learning rate, m = momentum, wd = weight decay:
/// ```
/// g   = grad + wd * w
/// buf = m * buf + g                      (buf starts at 0, so the first buf equals g, as in PyTorch)
/// d   = nesterov ? g + m * buf : buf     (d = g when m == 0)
/// w   = w - lr * d
/// ```
/// State: "sgd.momentum.<param>" (shape of the parameter), only when m != 0.
public struct SGD: Optimizer, Equatable {
  /// Default step size.
  public var learningRate: Float
  /// Momentum factor m (0 disables momentum and keeps no state).
  public var momentum: Float
  /// Use Nesterov momentum (`g + m * buf` instead of `buf`). Requires `momentum > 0`.
  public var nesterov: Bool
  /// L2 penalty coefficient added to the gradient as `wd * w`.
  public var weightDecay: Float
  /// Momentum buffers keyed by parameter name.
  private var momentumBuffers: [String: Tensor] = [:]

  /// An SGD optimizer. Preconditions: learning rate, momentum and weight decay are not negative; Nesterov needs
  /// momentum > 0.
  public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
    precondition(learningRate >= 0, "SGD learning rate \(learningRate) must not be negative")
    precondition(momentum >= 0, "SGD momentum \(momentum) must not be negative")
    precondition(weightDecay >= 0, "SGD weight decay \(weightDecay) must not be negative")
    precondition(!nesterov || momentum > 0, "SGD Nesterov momentum needs momentum > 0 (got \(momentum))")
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
  }

  /// One SGD update of `value` from `gradient`; see the type's formula.
  public mutating func update(name: String, value: inout Tensor, gradient: Tensor, learningRate lr: Float) {
    precondition(
      value.shape == gradient.shape,
      "SGD: parameter '\(name)' has shape \(value.shape) but its gradient has shape \(gradient.shape)")
    let m = momentum
    let wd = weightDecay
    let nesterov = self.nesterov
    if m == 0 {
      value.data.withUnsafeMutableBufferPointer { w in
        gradient.data.withUnsafeBufferPointer { grad in
          for i in 0..<w.count {
            w[i] -= lr * (grad[i] + wd * w[i])
          }
        }
      }
      return
    }
    var buffer = momentumBuffers.removeValue(forKey: name) ?? Tensor(shape: value.shape)
    precondition(
      buffer.shape == value.shape,
      "SGD: momentum state for '\(name)' has shape \(buffer.shape) but the parameter has shape \(value.shape)")
    value.data.withUnsafeMutableBufferPointer { w in
      gradient.data.withUnsafeBufferPointer { grad in
        buffer.data.withUnsafeMutableBufferPointer { buf in
          for i in 0..<w.count {
            let g = grad[i] + wd * w[i]
            buf[i] = m * buf[i] + g
            let d = nesterov ? g + m * buf[i] : buf[i]
            w[i] -= lr * d
          }
        }
      }
    }
    momentumBuffers[name] = buffer
  }

  /// "sgd.momentum.<param>" for every parameter updated so far (empty without momentum).
  public func stateTensors() -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (name, buffer) in momentumBuffers { out["sgd.momentum." + name] = buffer }
    return out
  }

  /// Restores momentum buffers from `stateTensors()` output; throws on keys without the "sgd.momentum." prefix.
  public mutating func loadState(_ tensors: [String: Tensor]) throws {
    let prefix = "sgd.momentum."
    var buffers: [String: Tensor] = [:]
    for (key, tensor) in tensors {
      guard key.hasPrefix(prefix), key.count > prefix.count else {
        throw OptimizerStateError(
          "SGD state key '\(key)' is not of the form 'sgd.momentum.<param>'; was the checkpoint saved with another optimizer?")
      }
      buffers[String(key.dropFirst(prefix.count))] = tensor
    }
    momentumBuffers = buffers
  }
}

/// Adam (PyTorch `Adam`, with bias correction) and, with `decoupledWeightDecay`, AdamW.
///
/// Per element, with t the parameter's step count after increment, lr, b1, b2, eps, wd:
/// ```
/// Adam:  g = grad + wd * w                 AdamW: g = grad;  w = w * (1 - lr * wd)
/// m = b1 * m + (1 - b1) * g
/// v = b2 * v + (1 - b2) * g^2
/// w = w - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// ```
/// State: "adam.m.<param>", "adam.v.<param>" (shape of the parameter) and "adam.step.<param>" (shape [], the
/// step count t as a Float, exact up to 2^24 steps).
public struct Adam: Optimizer, Equatable {
  /// Default step size.
  public var learningRate: Float
  /// Decay of the first-moment average.
  public var beta1: Float
  /// Decay of the second-moment average.
  public var beta2: Float
  /// Added to the bias-corrected RMS to avoid division by zero.
  public var epsilon: Float
  /// Weight-decay coefficient: L2 added to the gradient (Adam) or decoupled shrinkage (AdamW).
  public var weightDecay: Float
  /// true: AdamW (decay applied to the weights directly, scaled by lr); false: classic L2 through the gradient.
  public var decoupledWeightDecay: Bool

  private struct Moments: Sendable, Equatable {
    var m: Tensor
    var v: Tensor
    var step: Int
  }
  private var moments: [String: Moments] = [:]

  /// An Adam (or AdamW) optimizer with PyTorch's defaults. Preconditions: 0 <= beta < 1, lr/eps/wd not negative.
  public init(
    learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
    weightDecay: Float = 0, decoupledWeightDecay: Bool = false
  ) {
    precondition(learningRate >= 0, "Adam learning rate \(learningRate) must not be negative")
    precondition(beta1 >= 0 && beta1 < 1, "Adam beta1 \(beta1) must be in [0, 1)")
    precondition(beta2 >= 0 && beta2 < 1, "Adam beta2 \(beta2) must be in [0, 1)")
    precondition(epsilon >= 0, "Adam epsilon \(epsilon) must not be negative")
    precondition(weightDecay >= 0, "Adam weight decay \(weightDecay) must not be negative")
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    self.decoupledWeightDecay = decoupledWeightDecay
  }

  /// One Adam/AdamW update of `value` from `gradient`; see the type's formula.
  public mutating func update(name: String, value: inout Tensor, gradient: Tensor, learningRate lr: Float) {
    precondition(
      value.shape == gradient.shape,
      "Adam: parameter '\(name)' has shape \(value.shape) but its gradient has shape \(gradient.shape)")
    var state =
      moments.removeValue(forKey: name)
      ?? Moments(m: Tensor(shape: value.shape), v: Tensor(shape: value.shape), step: 0)
    precondition(
      state.m.shape == value.shape && state.v.shape == value.shape,
      "Adam: state for '\(name)' has shapes \(state.m.shape), \(state.v.shape) but the parameter has shape \(value.shape)")
    state.step += 1
    let b1 = beta1
    let b2 = beta2
    let eps = epsilon
    // Bias corrections in Double: b^t underflows gracefully and keeps precision for large t.
    let correction1 = Float(1 - pow(Double(b1), Double(state.step)))
    let correction2Root = Float((1 - pow(Double(b2), Double(state.step))).squareRoot())
    let stepSize = lr / correction1
    let l2 = decoupledWeightDecay ? 0 : weightDecay
    let shrink: Float = decoupledWeightDecay ? 1 - lr * weightDecay : 1
    value.data.withUnsafeMutableBufferPointer { wp in
      gradient.data.withUnsafeBufferPointer { gp in
        state.m.data.withUnsafeMutableBufferPointer { mp in
          state.v.data.withUnsafeMutableBufferPointer { vp in
            let (w, grad, m, v) = (SharedBuffer(wp), SharedBuffer(gp), SharedBuffer(mp), SharedBuffer(vp))
            // Element-wise, so blocks of elements on the workers give the same values for any thread count.
            // g = grad + l2·w; w ·= shrink; m = b1·m + (1 − b1)·g; v = b2·v + (1 − b2)·g·g;
            // w −= stepSize·m / (√v / √(1 − b2^t) + eps)
            runElementBlocks(wp.count) { r in
              let i = r.lowerBound
              wrapnet_adam_update(
                w.base + i, grad.base + i, m.base + i, v.base + i, r.count, l2, shrink, b1, 1 - b1, b2, 1 - b2,
                correction2Root, eps, stepSize)
            }
          }
        }
      }
    }
    moments[name] = state
  }

  /// "adam.m.<param>", "adam.v.<param>", "adam.step.<param>" for every parameter updated so far.
  public func stateTensors() -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (name, state) in moments {
      out["adam.m." + name] = state.m
      out["adam.v." + name] = state.v
      out["adam.step." + name] = Tensor(shape: [], data: [Float(state.step)])
    }
    return out
  }

  /// Restores state from `stateTensors()` output. Throws when a key is foreign, a parameter lacks one of m, v,
  /// step, m and v differ in shape, or the step is not a non-negative integer.
  public mutating func loadState(_ tensors: [String: Tensor]) throws {
    var ms: [String: Tensor] = [:]
    var vs: [String: Tensor] = [:]
    var steps: [String: Tensor] = [:]
    for (key, tensor) in tensors {
      if key.hasPrefix("adam.m.") {
        ms[String(key.dropFirst(7))] = tensor
      } else if key.hasPrefix("adam.v.") {
        vs[String(key.dropFirst(7))] = tensor
      } else if key.hasPrefix("adam.step.") {
        steps[String(key.dropFirst(10))] = tensor
      } else {
        throw OptimizerStateError(
          "Adam state key '\(key)' is not 'adam.m.<param>', 'adam.v.<param>' or 'adam.step.<param>'; was the checkpoint saved with another optimizer?")
      }
    }
    var restored: [String: Moments] = [:]
    for name in Set(ms.keys).union(vs.keys).union(steps.keys) {
      guard let m = ms[name], let v = vs[name], let stepTensor = steps[name] else {
        throw OptimizerStateError(
          "Adam state for parameter '\(name)' is incomplete: it needs adam.m, adam.v and adam.step entries")
      }
      guard m.shape == v.shape else {
        throw OptimizerStateError(
          "Adam state for parameter '\(name)': adam.m has shape \(m.shape) but adam.v has shape \(v.shape)")
      }
      guard stepTensor.count == 1, let stepValue = stepTensor.data.first, stepValue >= 0,
        stepValue == stepValue.rounded(), stepValue < 0x1p24
      else {
        throw OptimizerStateError(
          "Adam state for parameter '\(name)': adam.step must hold one non-negative integer, found \(stepTensor.data)")
      }
      restored[name] = Moments(m: m, v: v, step: Int(stepValue))
    }
    moments = restored
  }
}
