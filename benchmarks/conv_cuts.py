"""One large convolution, whole and cut, at several map sizes: what `sliced_convs="auto"` weighs.

    python benchmarks/conv_cuts.py                                 # head conv, 64x64 and 128x128
    python benchmarks/conv_cuts.py --onednn-max-isa AVX2           # oneDNN's AVX2 kernels
    python benchmarks/conv_cuts.py --channels 512 512 --sizes 64x64 128x256 --rounds 3

Each map size runs in a fresh process (so `--onednn-max-isa` reaches oneDNN
before TensorFlow starts) that times the candidate cuts of
`inference.calibration` side by side, alternating, one image: the whole
convolution, 2/4/8 filter slices, 2 row bands. A size whose process does not
finish within `--timeout` seconds is reported as such (`--whole-only` tells
whether the whole convolution alone is the slow one).
"""

import argparse
import json
import os
import subprocess
import sys

from danet_keras.cli.arguments import add_size_argument

CHILD = """
import json, sys
from danet_keras.inference import calibration
from danet_keras.utils.cpu import kernels_description
channels, kernel, dilation, size, rounds, whole_only = json.loads(sys.argv[1])
cuts = [calibration.WHOLE] if whole_only else None
times = calibration.time_candidates(
    channels[0], channels[1], (kernel, kernel), (1, 1), (dilation, dilation), tuple(size), rounds,
    cuts,
)
print(json.dumps({"cpu": kernels_description(),
                  "ms": {calibration.label(cut): t * 1e3 for cut, t in times.items()}}))
"""


def time_size(args, size):
    """{"cpu", "ms": {cut: median ms}}, or {"error": why} for one map size, in a fresh process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if args.onednn_max_isa:
        env["ONEDNN_MAX_CPU_ISA"] = args.onednn_max_isa
    shape = [list(args.channels), args.kernel, args.dilation, list(size), args.rounds]
    shape.append(args.whole_only)
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(shape)],
            capture_output=True, text=True, env=env, timeout=args.timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {args.timeout:.0f} s"}
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(args, rows):
    cpu = next((row["cpu"] for row in rows.values() if "cpu" in row), "unknown (no size finished)")
    cuts = []
    for row in rows.values():
        cuts += [cut for cut in row.get("ms", {}) if cut not in cuts]
    lines = [
        f"CPU: {cpu}",
        "",
        f"3x{args.kernel} convolution {args.channels[0]} -> {args.channels[1]}, dilation "
        f"{args.dilation}, one image; median ms of {args.rounds} calls, alternating",
        "",
        "| map | " + " | ".join(cuts) + " |",
        "|---|" + "---|" * len(cuts),
    ]
    for (height, width), row in rows.items():
        if "error" in row:
            lines.append(f"| {height}x{width} | {row['error']} |" + " |" * (len(cuts) - 1))
            continue
        whole = row["ms"].get("whole")
        cells = []
        for cut in cuts:
            ms = row["ms"].get(cut)
            ratio = f" ({ms / whole:.2f}x)" if ms is not None and whole and cut != "whole" else ""
            cells.append("" if ms is None else f"{ms:.0f}{ratio}")
        lines.append(f"| {height}x{width} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, nargs=2, default=(2048, 512), metavar=("IN", "OUT"))
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--dilation", type=int, default=1)
    add_size_argument(
        parser, "--sizes", "feature maps (default 64x64 128x128)", default=[(64, 64), (128, 128)],
        nargs="+",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--whole-only", action="store_true", help="time the whole convolution alone (no cuts)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per map size")
    parser.add_argument(
        "--onednn-max-isa", help="ONEDNN_MAX_CPU_ISA for the timing processes, e.g. AVX2"
    )
    args = parser.parse_args(argv)
    rows = {tuple(size): time_size(args, size) for size in args.sizes}
    print(table(args, rows))


if __name__ == "__main__":
    main()
