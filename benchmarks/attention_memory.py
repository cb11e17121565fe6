"""Peak memory and time of the position attention: one block vs query blocks.

Each case runs in its own process (peak RSS is per process), on a DANet-sized
head feature map (512 channels, 1/8 of the image). "one block" sets
`block_size` to the number of positions, which materialises the whole
(B x N x N) energy as the official code does; "chunked" uses the default
automatic block size (an energy budget of 2**24 elements per block).

    python benchmarks/attention_memory.py                  # default sizes
    python benchmarks/attention_memory.py --sizes 64x128 128x256 --repeats 3
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
h, w, channels, block, repeats = (int(v) if v != "None" else None for v in sys.argv[1:6])
layer = PositionAttention(block_size=block)
layer.build((1, h, w, channels))
layer.gamma.assign(1.0)
x = tf.constant(np.random.default_rng(0).normal(size=(1, h, w, channels)).astype("float32"))
run = tf.function(lambda x: layer(x), jit_compile=False)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run(x).numpy()  # trace + first run
times = []
for _ in range(repeats):
    start = time.perf_counter(); run(x).numpy(); times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {"seconds": min(times), "peak_mb": peak / 1024, "growth_mb": (peak - base) / 1024}
print(json.dumps(result))
"""


def run_case(h, w, channels, block, repeats):
    result = subprocess.run(
        [sys.executable, "-c", CASE, str(h), str(w), str(channels), str(block), str(repeats)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["64x64", "64x128", "128x128", "128x256"],
        help="feature map sizes HxW (image size / 8)",
    )
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    print(
        "| feature map (image) | N | path | time (s) | peak RSS (MB) | energy of one block (MB) |"
    )
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        h, w = (int(v) for v in size.split("x"))
        n = h * w
        for label, block in (("one block", n), ("chunked (auto)", None)):
            result = run_case(h, w, args.channels, block, args.repeats)
            rows = n if block else max(1, min(n, 2**24 // n))
            energy_mb = rows * n * 4 / 2**20
            if result is None:
                print(
                    f"| {h}x{w} ({8 * h}x{8 * w}) | {n} | {label} | failed (out of memory?) | "
                    f"| {energy_mb:.0f} |"
                )
                continue
            print(
                f"| {h}x{w} ({8 * h}x{8 * w}) | {n} | {label} | {result['seconds']:.3f} | "
                f"{result['peak_mb']:.0f} | {energy_mb:.0f} |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
