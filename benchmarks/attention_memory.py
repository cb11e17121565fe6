"""Peak memory and time of the position attention: one block vs query blocks.

Each case runs in its own process (peak RSS is per process), on a DANet-sized
head feature map (512 channels, 1/8 of the image). "one block" sets
`block_size` to the number of positions, which materialises the whole
(B x N x N) energy as the official code does; "chunked" uses the default
automatic block size (an energy budget of 2**24 elements per block).

Inference rows run the layer's forward pass. Training rows run forward and
backward (gradients of sum(E**2) with respect to the input and every weight)
three ways: one block with autodiff (as the official code), chunked with
autodiff (`recompute=False`: the forward holds one block at a time, but
autodiff keeps every block's softmax for the backward pass, N x N values in
all) and chunked with the recomputed gradient (`recompute=True`, the default:
only Q, K, V are kept, and the backward pass recomputes one block at a time).
Cases estimated above `--max-gb` are skipped, not run into the OOM killer.

    python benchmarks/attention_memory.py                  # default sizes
    python benchmarks/attention_memory.py --sizes 64x128 128x256 --repeats 3
    python benchmarks/attention_memory.py --mode training --train-sizes 128x128
    python benchmarks/attention_memory.py --quick          # tiny sizes, seconds (CI smoke test)
"""

import argparse
import json
import subprocess
import sys

CASE = r"""
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
from danet_keras.layers import PositionAttention
h, w, channels, block, repeats, budget = (int(v) if v != "None" else None for v in sys.argv[1:7])
training, recompute = sys.argv[7] == "training", sys.argv[8] == "recompute"
layer = PositionAttention(block_size=block, energy_budget=budget, recompute=recompute)
layer.build((1, h, w, channels))
layer.gamma.assign(1.0)
x = tf.constant(np.random.default_rng(0).normal(size=(1, h, w, channels)).astype("float32"))

@tf.function(jit_compile=False)
def run(x):
    if not training:
        return [layer(x)]
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = 0.5 * tf.reduce_sum(layer(x) ** 2)
    return tape.gradient(loss, [x] + layer.trainable_weights)

def once():
    return [t.numpy() for t in run(x)]

base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
once()  # trace + first run
times = []
for _ in range(repeats):
    start = time.perf_counter(); once(); times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {"seconds": min(times), "peak_mb": peak / 1024, "growth_mb": (peak - base) / 1024}
print(json.dumps(result))
"""

ENERGY_BUDGET = 2**24  # the layer's default: elements of one block's energy
# name, block size (None: automatic), recompute
INFERENCE_PATHS = (("one block", "all", False), ("chunked (auto)", None, True))
TRAINING_PATHS = (
    ("one block, autodiff (as the official code)", "all", False),
    ("chunked, autodiff (before)", None, False),
    ("chunked, recomputed (now)", None, True),
)


def run_case(h, w, channels, block, repeats, budget, mode, recompute):
    arguments = [h, w, channels, block, repeats, budget, mode]
    arguments.append("recompute" if recompute else "autodiff")
    result = subprocess.run(
        [sys.executable, "-c", CASE, *map(str, arguments)], capture_output=True, text=True
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        # -9: SIGKILL, what the OOM killer sends.
        return {"error": f"exit {result.returncode}" + (f": {lines[-1][:80]}" if lines else "")}
    return json.loads(result.stdout.strip().splitlines()[-1])


def block_rows(n, block, budget):
    """Query rows per block, as the layer chooses them for one image."""
    return n if block == "all" else max(1, min(n, budget // n))


def estimated_bytes(n, rows, mode, recompute):
    """Rough peak of the attention's (rows x N) tensors, float32, one image.

    Forward: energy and softmax of one block. Autodiff training keeps every
    block's softmax (N x N) and its backward holds ~3 blocks (dP, dS, a
    product); the recomputed backward holds ~5 (P, dP, dP * P, dS, a copy).
    """
    if mode == "inference":
        return 4 * 2 * rows * n
    if recompute:
        return 4 * 5 * rows * n
    return 4 * (n * n + 3 * rows * n)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["64x64", "64x128", "128x128", "128x256"],
        help="inference feature map sizes HxW (image size / 8)",
    )
    parser.add_argument(
        "--train-sizes",
        nargs="+",
        default=["64x128", "128x128", "128x256"],
        help="training (forward + backward) feature map sizes HxW",
    )
    parser.add_argument("--mode", choices=["inference", "training", "both"], default="both")
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--energy-budget",
        type=int,
        default=ENERGY_BUDGET,
        help="energy elements per block of the chunked paths (the layer's default)",
    )
    parser.add_argument(
        "--max-gb",
        type=float,
        default=12.0,
        help="skip cases whose estimated attention memory exceeds this many GB",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one tiny size per mode, 32 channels, small blocks, 1 repeat: a smoke test",
    )
    args = parser.parse_args(argv)
    if args.quick:
        # 12x16 = 192 positions, 2048 // 192 = 10 query rows: 20 blocks, the last partial.
        args.sizes = args.train_sizes = ["12x16"]
        args.channels, args.repeats, args.energy_budget = 32, 1, 2048

    cases = []
    if args.mode in ("inference", "both"):
        cases += [("inference", size, path) for size in args.sizes for path in INFERENCE_PATHS]
    if args.mode in ("training", "both"):
        cases += [("training", size, path) for size in args.train_sizes for path in TRAINING_PATHS]

    print(
        "| feature map (image) | N | pass | path | time (s) | peak RSS (MB) | RSS growth (MB) "
        "| energy of one block (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    failures = 0
    for mode, size, (label, block, recompute) in cases:
        h, w = (int(v) for v in size.split("x"))
        n = h * w
        rows = block_rows(n, block, args.energy_budget)
        energy_mb = rows * n * 4 / 2**20
        energy = f"{energy_mb:.0f}" if energy_mb >= 10 else f"{energy_mb:.2f}"
        prefix = f"| {h}x{w} ({8 * h}x{8 * w}) | {n} | {mode} | {label} |"
        estimate = estimated_bytes(n, rows, mode, recompute) / 2**30
        if estimate > args.max_gb:
            print(f"{prefix} skipped: needs ~{estimate:.0f} GB (--max-gb) | | | {energy} |")
            continue
        result = run_case(
            h,
            w,
            args.channels,
            n if block == "all" else block,
            args.repeats,
            args.energy_budget,
            mode,
            recompute,
        )
        if "error" in result:
            failures += 1
            print(f"{prefix} failed ({result['error']}) | | | {energy} |")
        else:
            print(
                f"{prefix} {result['seconds']:.3f} | {result['peak_mb']:.0f} | "
                f"{result['growth_mb']:.0f} | {energy} |"
            )
        sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
