/// Named layers run one after another. Parameter and buffer names are prefixed with the layer's name
/// ("conv2.weight", "bn2.running_mean").
public struct Sequential: Layer {
  public var layers: [(name: String, layer: any Layer)]

  public init(_ layers: [(name: String, layer: any Layer)]) {
    self.layers = layers
  }

  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    var x = input
    for i in layers.indices { x = layers[i].layer.forward(x, phase: phase) }
    return x
  }

  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    var g = gradOutput
    for i in layers.indices.reversed() { g = layers[i].layer.backward(g) }
    return g
  }

  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    for i in layers.indices {
      let prefix = layers[i].name
      layers[i].layer.visitParameters { name, value, grad in visit("\(prefix).\(name)", &value, &grad) }
    }
  }

  public mutating func visitBuffers(_ visit: (String, inout Tensor) -> Void) {
    for i in layers.indices {
      let prefix = layers[i].name
      layers[i].layer.visitBuffers { name, value in visit("\(prefix).\(name)", &value) }
    }
  }

  public mutating func visitWrapLayers(_ visit: (inout WrapLayer) -> Void) {
    for i in layers.indices { layers[i].layer.visitWrapLayers(visit) }
  }
}

/// The ResNet basic block in WrapNet form, with the parameter-free "option A" shortcut of the CIFAR ResNets:
///
///     h   = act1(bn1(conv1(recode(x))))          // conv1: 3×3, stride s, low-bit accumulator; recode only
///                                                // with residual input clips (`CodeRequantizer`)
///     h   = bn2(conv2(h))                        // conv2: 3×3, stride 1, low-bit accumulator
///     sc  = pad_channels(subsample_s(x)) · inputScale   // input codes as Float values
///     out = act2(h + sc)                         // codes for the next layer
///
/// x: input codes [N, C, H, W]; out: codes [N, O, H/s, W/s]. The residual add is in Float, in this order, so the
/// integer engine can repeat the same operations exactly.
public struct ResidualBlock: Layer {
  public var body: Sequential  // (recode,) conv1, bn1, act1, conv2, bn2
  public var output: ActivationCodes
  public let stride: Int
  public let inChannels: Int
  public let outChannels: Int
  /// Float value of one input code.
  public let inputScale: Float
  private var cacheInputShape: [Int] = []

  public init(body: Sequential, output: ActivationCodes, stride: Int, inChannels: Int, outChannels: Int,
              inputScale: Float) {
    precondition(outChannels >= inChannels, "option-A shortcut needs outChannels >= inChannels")
    self.body = body
    self.output = output
    self.stride = stride
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.inputScale = inputScale
  }

  /// sc = pad_channels(subsample(x)) · inputScale; [N, C, H, W] -> [N, O, Ho, Wo] with Ho = ceil(H / stride).
  public func shortcut(_ x: Tensor) -> Tensor {
    let n = x.shape[0], h = x.shape[2], w = x.shape[3]
    let ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride
    var out = [Float](repeating: 0, count: n * outChannels * ho * wo)
    // Extra channels are zero, split evenly before and after the input's (as in the CIFAR ResNet paper's code).
    let padBefore = (outChannels - inChannels) / 2
    let (inC, outC, s, scale) = (inChannels, outChannels, stride, inputScale)
    x.data.withUnsafeBufferPointer { px in
      out.withUnsafeMutableBufferPointer { po in
        let (xs, os) = (SharedBuffer(px), SharedBuffer(po))
        runBlocks(n) { i in
          for c in 0..<inC {
            let src = xs.base + (i * inC + c) * h * w
            let dst = os.base + (i * outC + c + padBefore) * ho * wo
            for y in 0..<ho {
              for xx in 0..<wo { dst[y * wo + xx] = src[y * s * w + xx * s] * scale }
            }
          }
        }
      }
    }
    return Tensor(shape: [n, outChannels, ho, wo], data: out)
  }

  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    var h = body.forward(input, phase: phase)
    let sc = shortcut(input)
    precondition(h.shape == sc.shape, "ResidualBlock: body \(h.shape) and shortcut \(sc.shape) differ")
    let perImage = h.count / max(1, h.shape[0])
    sc.data.withUnsafeBufferPointer { psc in
      h.data.withUnsafeMutableBufferPointer { ph in
        let (scs, hs) = (SharedBuffer(psc), SharedBuffer(ph))
        runBlocks(h.shape[0]) { i in
          for e in (i * perImage)..<((i + 1) * perImage) { hs.base[e] += scs.base[e] }
        }
      }
    }
    cacheInputShape = input.shape
    return output.forward(h, phase: phase)
  }

  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    let gSum = output.backward(gradOutput)
    // out = body(x) + shortcut(x): both branches receive dL/d(sum)
    var gx = body.backward(gSum)
    let n = cacheInputShape[0], h = cacheInputShape[2], w = cacheInputShape[3]
    let ho = gSum.shape[2], wo = gSum.shape[3]
    let padBefore = (outChannels - inChannels) / 2
    let (inC, outC, s, scale) = (inChannels, outChannels, stride, inputScale)
    gSum.data.withUnsafeBufferPointer { pg in
      gx.data.withUnsafeMutableBufferPointer { px in
        let (gs, xs) = (SharedBuffer(pg), SharedBuffer(px))
        runBlocks(n) { i in
          for c in 0..<inC {
            let src = gs.base + (i * outC + c + padBefore) * ho * wo
            let dst = xs.base + (i * inC + c) * h * w
            for y in 0..<ho {
              // sc[i, c+pad, y, xx] = x[i, c, y·s, xx·s] · inputScale
              for xx in 0..<wo { dst[y * s * w + xx * s] += src[y * wo + xx] * scale }
            }
          }
        }
      }
    }
    return gx
  }

  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    body.visitParameters(visit)
  }

  public mutating func visitBuffers(_ visit: (String, inout Tensor) -> Void) {
    body.visitBuffers(visit)
  }

  public mutating func visitWrapLayers(_ visit: (inout WrapLayer) -> Void) {
    body.visitWrapLayers(visit)
  }
}
