"""PyTorch CPU twins of the WrapNet zoo models `mlp`, `cnn` and `resnet20` as the Swift trainer trains them.

Same layers, quantizers, straight-through estimators, accumulator and loss as Sources/WrapNet (Quantized/WrapLayer,
Quantized/Accumulator, Quantized/ActivationCodes, Quantized/ModelZoo, Quantized/Sequential), with the defaults of
`wrapnet train`:

- first layer (raw pixels 0...255, one code = 1/255) and last layer: symmetric 8-bit weights, 32-bit exact
  accumulator; the last layer has a bias;
- every other layer: binary weights (sign, 0 -> +1; scale = mean |w| per output channel), 8-bit accumulator in
  the given mode (cyclic: f_2(wrap_8(z)); exact: z), overflow penalty 0.01 * sum(max(|z| - 128, 0)) / N;
- each hidden layer is WrapLayer -> BatchNorm (momentum 0.1, eps 1e-5) -> 2-bit activation codes (clip 2);
- weight codes reach the product through the straight-through estimator dL/dW = dL/dcodes / s (s held constant),
  the scale s[c] * inputScale is applied after the accumulator, activation codes have the clipped STE.

The Swift trainer sums each product exactly (Float64 or split Float32 products where Float32 could round); here
PyTorch sums in Float32 as any PyTorch model would.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ACT_BITS = 2
ACT_CLIP = 2.0
ACC_BITS = 8
SLOPE = 2.0
PENALTY = 0.01


class CyclicAccumulator(torch.autograd.Function):
    """y = f_k(wrap_b(z)); dy/dz = f_k'(wrap_b(z)) (1 or -k), the wrap passed straight through."""

    @staticmethod
    def forward(ctx, z):
        half = float(1 << (ACC_BITS - 1))
        m = z - 2 * half * torch.floor(z / (2 * half) + 0.5)
        q = SLOPE * half / (SLOPE + 1)
        outside = m.abs() > q
        y = torch.where(m > q, SLOPE * (half - m), torch.where(m < -q, -SLOPE * (half + m), m))
        ctx.save_for_backward(outside)
        return y

    @staticmethod
    def backward(ctx, grad):
        (outside,) = ctx.saved_tensors
        return torch.where(outside, grad * -SLOPE, grad)


class WrapLayer(nn.Module):
    """codes, s = quantize(W); z = x (*) codes; y = acc(z); out = y * s[c] * inputScale (+ bias)."""

    def __init__(self, kind, cin, cout, weight_format, mode, input_scale, stride=1, bias=False):
        super().__init__()
        self.kind, self.stride, self.format, self.mode = kind, stride, weight_format, mode
        self.input_scale = input_scale
        shape = (cout, cin) if kind == "linear" else (cout, cin, 3, 3)
        fan = math.prod(shape[1:])
        bound = math.sqrt(6 / fan)
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.penalty = torch.zeros(())

    def quantize(self):
        w = self.weight
        flat = w.detach().flatten(1)
        if self.format == "binary":
            scale = flat.abs().mean(dim=1)
            codes = torch.where(w.detach() >= 0, 1.0, -1.0)
        else:  # symmetric 8-bit, rounding half away from zero
            largest = flat.abs().amax(dim=1)
            scale = torch.where(largest > 0, largest / 127, torch.ones_like(largest))
            r = w.detach() / scale.view(-1, *[1] * (w.dim() - 1))
            codes = torch.clamp(torch.sign(r) * torch.floor(r.abs() + 0.5), -127, 127)
        inv = scale.view(-1, *[1] * (w.dim() - 1))
        latent = w / inv  # d codes / dW = 1 / s (straight-through, s constant)
        return latent + (codes - latent).detach(), scale

    def forward(self, x):
        q, scale = self.quantize()
        if self.kind == "linear":
            z = F.linear(x, q)
        else:
            z = F.conv2d(x, q, stride=self.stride, padding=1)
        low_bit = self.mode != "exact" and self.format == "binary"
        if low_bit:
            limit = float(1 << (ACC_BITS - 1))
            self.penalty = PENALTY * F.relu(z.abs() - limit).sum() / x.shape[0]
            y = CyclicAccumulator.apply(z) if self.mode == "cyclic" else z
        else:
            self.penalty = torch.zeros(())
            y = z
        shape = (1, -1) if self.kind == "linear" else (1, -1, 1, 1)
        out = y * (scale * self.input_scale).view(shape)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        return out


class ActivationCodes(nn.Module):
    """code = round(clamp(x, 0, clip) * (2^a - 1) / clip), half up; dcode/dx = (2^a - 1)/clip inside [0, clip]."""

    def forward(self, x):
        levels = (1 << ACT_BITS) - 1
        scaled = torch.clamp(x, 0, ACT_CLIP) * (levels / ACT_CLIP)
        return scaled + (torch.floor(scaled + 0.5) - scaled).detach()


ACT_SCALE = ACT_CLIP / ((1 << ACT_BITS) - 1)


def block(layer, channels, conv):
    bn = nn.BatchNorm2d(channels) if conv else nn.BatchNorm1d(channels)
    return [layer, bn, ActivationCodes()]


class ResidualBlock(nn.Module):
    """h = bn2(conv2(act1(bn1(conv1(x))))); out = act(h + pad_channels(x[:, :, ::s, ::s]) * inputScale)."""

    def __init__(self, cin, cout, stride, mode):
        super().__init__()
        self.body = nn.Sequential(
            WrapLayer("conv", cin, cout, "binary", mode, ACT_SCALE, stride=stride), nn.BatchNorm2d(cout),
            ActivationCodes(),
            WrapLayer("conv", cout, cout, "binary", mode, ACT_SCALE), nn.BatchNorm2d(cout))
        self.stride, self.pad = stride, (cout - cin) // 2
        self.extra = cout - cin - self.pad
        self.output = ActivationCodes()

    def forward(self, x):
        sc = x[:, :, ::self.stride, ::self.stride] * ACT_SCALE
        if self.pad or self.extra:
            sc = F.pad(sc, (0, 0, 0, 0, self.pad, self.extra))
        return self.output(self.body(x) + sc)


class SumPool(nn.Module):
    def forward(self, x):
        return x.sum(dim=(2, 3))


def build(model, mode, channels=1, size=28, classes=10):
    """The zoo architecture `model` ("mlp", "cnn", "resnet20") as an nn.Sequential."""
    first = lambda kind, cin, cout: WrapLayer(kind, cin, cout, "int8", "exact", 1 / 255)
    low = lambda kind, cin, cout, stride=1: WrapLayer(kind, cin, cout, "binary", mode, ACT_SCALE, stride=stride)
    if model == "mlp":
        layers = [nn.Flatten()] + block(first("linear", channels * size * size, 1024), 1024, False)
        for _ in range(3):
            layers += block(low("linear", 1024, 1024), 1024, False)
        layers.append(WrapLayer("linear", 1024, classes, "int8", "exact", ACT_SCALE, bias=True))
    elif model == "cnn":
        layers = block(first("conv", channels, 16), 16, True) + [nn.MaxPool2d(2)]
        layers += block(low("conv", 16, 32), 32, True) + block(low("conv", 32, 64), 64, True) + [nn.MaxPool2d(2)]
        layers += block(low("conv", 64, 64), 64, True) + [nn.Flatten()]
        layers.append(WrapLayer("linear", 64 * 7 * 7, classes, "int8", "exact", ACT_SCALE, bias=True))
    elif model == "resnet20":
        layers = block(first("conv", channels, 16), 16, True)
        cin = 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(3):
                layers.append(ResidualBlock(cin, width, 2 if stage > 0 and b == 0 else 1, mode))
                cin = width
        plane = (size // 4) * (size // 4)
        layers += [SumPool(), WrapLayer("linear", 64, classes, "int8", "exact", ACT_SCALE / plane, bias=True)]
    else:
        raise ValueError(f"unknown model {model}")
    return nn.Sequential(*layers)


def penalty(net):
    """Sum of the overflow penalties of the last forward."""
    return sum(m.penalty for m in net.modules() if isinstance(m, WrapLayer))
