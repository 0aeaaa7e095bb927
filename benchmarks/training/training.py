"""Training images/s of the Swift trainer (`wrapnet train`) and of its PyTorch CPU twins, side by side.

    python training.py [--models mlp,cnn,resnet20] [--threads 1,2] [--modes cyclic,exact] [--json PATH]

Swift: `wrapnet train --epochs 2 --limit-train L --threads T` (batch 128, Adam, cosine); images/s of epoch 2, as the
trainer reports it in summary.json (epoch 1 is the warm-up; loading the data and evaluating are outside the epoch).
PyTorch: the twin (twins.py) trained on the same images, same batch, Adam and cosine schedule; `--warmup` batches,
then images/s over the next `--batches` batches. Each PyTorch case runs in its own process with
torch.set_num_threads(T) and set_num_interop_threads(1).
Each case runs `--repeat` times, Swift and PyTorch alternating, and prints the median rate of each side, their
ratio, and the range of the ratios of the pairs (two-vCPU VMs change speed in phases, for both sides at once).
mlp and cnn train on MNIST (~/.cache/wrapnet or --data-dir); resnet20 on a synthetic CIFAR-10-format set of random
images (CIFAR-10 itself is not needed: the speed of these layers does not depend on the pixel values).
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# Swift: images per epoch (epoch 2 timed); PyTorch: timed batches after the warm-up. About 5-10 s each on one
# Zen 3 core.
SWIFT_IMAGES = {"mlp": 6400, "cnn": 3200, "resnet20": 640}
TORCH_BATCHES = {"mlp": 40, "cnn": 20, "resnet20": 6}


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_synthetic_cifar(directory, records):
    """cifar-10-batches-bin with `records` random images per file (5 train files + test)."""
    folder = os.path.join(directory, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rows = np.empty((records, 3073), dtype=np.uint8)
        rows[:, 0] = rng.integers(0, 10, records)
        rows[:, 1:] = rng.integers(0, 256, (records, 3072))
        rows.tofile(os.path.join(folder, name))


def load_images(model, data_dir, count):
    """uint8 images [count, C, H, W] and labels, the first `count` training images the Swift run uses."""
    if model == "resnet20":
        folder = os.path.join(data_dir, "cifar-10-batches-bin")
        rows = np.concatenate([np.fromfile(os.path.join(folder, f"data_batch_{i}.bin"), dtype=np.uint8)
                               .reshape(-1, 3073) for i in range(1, 6)])[:count]
        return rows[:, 1:].reshape(-1, 3, 32, 32), rows[:, 0].astype(np.int64)
    folder = os.path.join(data_dir, "mnist")
    images = read_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"))[:count]
    labels = read_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz"))[:count]
    return images.reshape(-1, 1, 28, 28), labels.astype(np.int64)


def torch_case(args):
    """Runs in a child process: trains the twin and prints {"images_per_second": ...}."""
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, HERE)
    import twins

    torch.set_num_threads(args.case_threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    model = args.case_model
    total = args.warmup + TORCH_BATCHES[model]
    images, labels = load_images(model, args.case_data, total * args.batch)
    images, labels = torch.from_numpy(images.copy()), torch.from_numpy(labels)
    c, size = images.shape[1], images.shape[2]
    net = twins.build(model, args.case_mode, channels=c, size=size)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / total)))
    order = torch.randperm(images.shape[0])
    losses = []
    start = None
    for step in range(total):
        if step == args.warmup:
            start = time.perf_counter()
        idx = order[(torch.arange(args.batch) + step * args.batch) % images.shape[0]]
        x = images[idx].float()
        y = labels[idx]
        opt.zero_grad(set_to_none=False)
        logits = net(x)
        loss = F.cross_entropy(logits, y) + twins.penalty(net)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss))
    seconds = time.perf_counter() - start
    rate = TORCH_BATCHES[model] * args.batch / seconds
    print(json.dumps({"images_per_second": rate, "first_loss": losses[0], "last_loss": losses[-1]}))


def run_torch(args, model, threads, mode, data_dir):
    cmd = [sys.executable, __file__, "--case-model", model, "--case-threads", str(threads), "--case-mode", mode,
           "--case-data", data_dir, "--warmup", str(args.warmup), "--batch", str(args.batch)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"PyTorch case {model}/{threads} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_swift(args, model, threads, mode, data_dir, work):
    out_dir = os.path.join(work, f"{model}-{mode}-{threads}")
    dataset = "cifar10" if model == "resnet20" else "mnist"
    cmd = [args.wrapnet, "train", "--model", model, "--dataset", dataset, "--data-dir", data_dir,
           "--acc-mode", mode, "--epochs", "2", "--batch-size", str(args.batch), "--threads", str(threads),
           "--limit-train", str(SWIFT_IMAGES[model]), "--limit-test", "128", "--no-augment", "--out", out_dir]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"wrapnet train {model}/{threads} failed:\n{out.stderr}")
    with open(os.path.join(out_dir, "summary.json")) as f:
        history = json.load(f)["history"]
    return {"images_per_second": history[-1]["images_per_second"], "first_loss": history[0]["loss"],
            "last_loss": history[-1]["loss"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,cnn,resnet20")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--modes", default="cyclic", help="accumulator modes of the low-bit layers: cyclic, exact")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5, help="PyTorch batches before timing")
    p.add_argument("--repeat", type=int, default=3, help="runs of each case (Swift and PyTorch alternating); medians")
    p.add_argument("--wrapnet", default=os.path.join(REPO, ".build", "release", "wrapnet"))
    p.add_argument("--data-dir", default=os.environ.get("WRAPNET_DATA", os.path.expanduser("~/.cache/wrapnet")))
    p.add_argument("--json", help="write all results here")
    p.add_argument("--case-model", help=argparse.SUPPRESS)
    p.add_argument("--case-threads", type=int, help=argparse.SUPPRESS)
    p.add_argument("--case-mode", help=argparse.SUPPRESS)
    p.add_argument("--case-data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case_model:
        return torch_case(args)
    if args.repeat < 1:
        raise SystemExit(f"--repeat must be at least 1, got {args.repeat}")
    if not os.access(args.wrapnet, os.X_OK):
        raise SystemExit(f"{args.wrapnet} not found; build it with `swift build -c release` or pass --wrapnet")
    import torch
    print(f"cpu: {cpu_name()} ({os.cpu_count()} CPUs); torch {torch.__version__}; batch {args.batch}; "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as work:
        synthetic = os.path.join(work, "data")
        write_synthetic_cifar(synthetic, SWIFT_IMAGES["resnet20"] // 5)
        os.symlink(os.path.join(args.data_dir, "mnist"), os.path.join(synthetic, "mnist"))
        rows = []
        print(f"{'model':<9} {'mode':<7} {'threads':>7} {'swift img/s':>12} {'torch img/s':>12} {'swift/torch':>12}"
              f"  {'pairs':>11}")
        for model in args.models.split(","):
            for mode in args.modes.split(","):
                for threads in [int(t) for t in args.threads.split(",")]:
                    swift, torch_runs = [], []
                    for _ in range(args.repeat):
                        swift.append(run_swift(args, model, threads, mode, synthetic, work))
                        torch_runs.append(run_torch(args, model, threads, mode, synthetic))
                    s_rate = median([r["images_per_second"] for r in swift])
                    t_rate = median([r["images_per_second"] for r in torch_runs])
                    pairs = [a["images_per_second"] / b["images_per_second"] for a, b in zip(swift, torch_runs)]
                    print(f"{model:<9} {mode:<7} {threads:>7} {s_rate:>12.1f} {t_rate:>12.1f} {s_rate / t_rate:>12.2f}"
                          f"  {min(pairs):>5.2f}-{max(pairs):<5.2f}", flush=True)
                    rows.append({"model": model, "mode": mode, "threads": threads, "swift": swift,
                                 "torch": torch_runs, "swift_median": s_rate, "torch_median": t_rate})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "torch": torch.__version__, "batch": args.batch, "results": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
