"""DANet in Keras against the PyTorch reference, side by side on this machine.

    python benchmarks/vs_pytorch.py                      # the default matrix (~40 min, 2 cores)
    python benchmarks/vs_pytorch.py --smoke              # tiny sizes, every path (CI)
    python benchmarks/vs_pytorch.py --parts inference --sizes 512x512 --backbones resnet50
    python benchmarks/vs_pytorch.py --parts levers       # optimize_for_inference, lever by lever
    python benchmarks/vs_pytorch.py --all                # also the opt-in cells (hours)

The PyTorch side is the project's reference DANet (`convert.torch_reference`,
the official layer names and architecture) with trained-like BatchNorm
statistics; the Keras side loads the same weights through the converter,
and every inference row says how far its logits are from the reference's
(max |difference| / logit range, argmax agreement). Each configuration runs
in its own child process (`danet_keras.apps.benchmark.run_case_in_child`): its
peak RSS is its own, and one that passes `--max-rss-gb` is stopped and
reported as out of memory. Latency is the median of the timed calls after
one warm-up call; GFLOP/s count the model's nominal FLOPs (direct
convolutions and attention products) against the matmul peak measured at
the start of the run.

Parts (`--parts`): `inference` (resolutions x variants; `plain` is the model
as built, `optimized` its `optimize_for_inference` graph, `naive` that graph
with the whole N x N attention in one block as the official code holds it),
`backbones`, `bf16` (`winograd`: the graph with Winograd convolutions, opt-in
in bfloat16), `int8` (LiteRT/XNNPACK; `before` = every op int8, the
export before issue 13), `throughput` (images/s at batch 1, 4, 8),
`serving` (the SavedModel's signature against the bare model), `training`
(forward, three cross-entropies, backward, SGD; `Keras remat` rematerialises the
backbone's residual blocks), `levers`. Writes
`vs_pytorch.md`, `vs_pytorch.json` and `vs_pytorch.png` to `--output`.
"""

import argparse
import json
import os
import sys
import tempfile

from danet_keras.apps.benchmark import DEFAULT_MAX_RSS_GB, agreement, run_case_in_child
from danet_keras.utils.atomic_io import write_text

PARTS = ("inference", "backbones", "bf16", "int8", "throughput", "serving", "training", "levers")
DEFAULT_PARTS = tuple(p for p in PARTS if p != "levers")
RESOLUTIONS = ("256x256", "512x512", "512x1024", "1024x2048")
# Default cells: what fits ~40 minutes on 2 cores; `--all` adds the rest.
TRAINING_CELLS = (("512x512", 2), ("1024x1024", 1), ("1024x2048", 1))
SMOKE = dict(
    backbones=["resnet18"],
    sizes=["64x64"],
    head_channels=16,
    training_cells=(("64x64", 1),),
    batches=(1, 2),
    repeats=1,
)


def default_repeats(size):
    """Timed calls after the warm-up: 3 up to 512x512, 2 up to 512x1024, then 1 (time budget)."""
    height, width = parse_size(size)
    return 3 if height * width <= 2**18 else 2 if height * width <= 2**19 else 1


def parse_size(text):
    height, width = (int(v) for v in text.split("x"))
    return [height, width]


class Matrix:
    """Runs cases in child processes and keeps their results."""

    def __init__(self, args, work_dir):
        self.args = args
        self.work_dir = work_dir
        self.results = []

    def base(self, backbone, size, batch=1, precision="float32"):
        return dict(
            backbone=backbone,
            num_classes=self.args.num_classes,
            output_stride=self.args.output_stride,
            head_channels=self.args.head_channels,
            size=parse_size(size),
            batch=batch,
            precision=precision,
            repeats=self.args.repeats or default_repeats(size),
            threads=self.args.threads,
        )

    def weights(self, backbone):
        path = os.path.join(self.work_dir, f"weights_{backbone}.npz")
        if not os.path.exists(path):
            base = self.base(backbone, "64x64")
            made = run_case_in_child(dict(base, task="weights", side="torch", weights=path))
            if "error" in made:
                raise RuntimeError(f"PyTorch reference weights: {made['error']}")
        return path

    def run(self, part, label, case, reference_label=None, truth=None, **extra):
        """Runs one case: its time against the row `reference_label` of this part, its logits
        against the row `truth` = (part, label) (default: the same reference row)."""
        if case["task"] == "inference":
            case.setdefault("logits_path", os.path.join(self.work_dir, f"{len(self.results)}.npy"))
        result = run_case_in_child(
            case, timeout_s=self.args.timeout, max_rss_gb=self.args.max_rss_gb
        )
        row = {"part": part, "label": label, "case": case, **extra, **result}
        key = (case["backbone"], case["size"], case["batch"])
        if reference_label is not None and "error" not in result:
            reference = self.find(part, reference_label, *key)
            if reference is not None and "error" not in reference:
                row["ratio"] = result["median_s"] / reference["median_s"]
            truth = self.find(*(truth or (part, reference_label)), *key)
            if truth is not None and os.path.exists(truth["case"].get("logits_path") or ""):
                row["logit_diff"], row["agreement"] = agreement(
                    case["logits_path"], truth["case"]["logits_path"]
                )
        self.results.append(row)
        print(format_row(row, self.peaks()), flush=True)
        return row

    def find(self, part, label, backbone, size, batch):
        wanted = (part, label, backbone, size, batch)
        for row in self.results:
            case = row["case"]
            key = (row["part"], row["label"], case.get("backbone"), case.get("size"))
            if key + (case.get("batch"),) == wanted:
                return row
        return None

    def peaks(self):
        for row in self.results:
            if row["part"] == "peak" and "error" not in row:
                return row
        return None


def gflops(row, peaks):
    if "flops" not in row or "median_s" not in row:
        return ""
    value = row["flops"] / row["median_s"] / 1e9
    text = f"{value:.0f}"
    key = "bfloat16_gflops" if row["case"]["precision"] == "bfloat16" else "float32_gflops"
    if peaks and key in peaks:
        text += f" ({100 * value / peaks[key]:.0f}%)"
    return text


def format_row(row, peaks=None):
    case = row["case"]
    size = "x".join(str(v) for v in case.get("size", []))
    cells = [row["part"], case.get("backbone", ""), size, str(case.get("batch", "")), row["label"]]
    if "error" in row:
        return "| " + " | ".join(cells + [f"**{row['error']}**", "", "", "", "", ""]) + " |"
    if row["part"] == "peak":
        measured = [f"{row['float32_gflops']:.0f} GFLOP/s fp32"]
        if "bfloat16_gflops" in row:
            measured.append(f"{row['bfloat16_gflops']:.0f} bf16")
        return f"| peak | matmul 2048x2048 | | | TensorFlow | {', '.join(measured)} | | | | | |"
    latency = f"{row['median_s']:.3f}"
    if row["part"] == "serving":
        latency += f" (bare {row['bare_median_s']:.3f}, +{100 * row['overhead']:.1f}%)"
    if row["part"] == "throughput":
        latency += f" ({case['batch'] / row['median_s']:.2f} img/s)"
    ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
    if "memory_ratio" in row:
        ratio += f" time, {row['memory_ratio']:.2f}x memory"
    match = ""
    if "logit_diff" in row:
        match = f"{row['logit_diff']:.1e} / {100 * row['agreement']:.2f}%"
    memory = f"{row['peak_rss_mb']:.0f}"
    return "| " + " | ".join(cells + [latency, ratio, memory, gflops(row, peaks), match, ""]) + " |"


HEADER = (
    "| part | backbone | image | batch | side / variant | median latency (s) | vs PyTorch "
    "| peak RSS (MB) | GFLOP/s (of peak) | logits vs PyTorch: max diff / range, argmax | |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


# === Parts ===
def inference_part(matrix, part, backbones, sizes, variants, precision="float32"):
    for backbone in backbones:
        weights = matrix.weights(backbone)
        for size in sizes:
            base = dict(matrix.base(backbone, size, precision=precision), weights=weights)
            torch_label = f"PyTorch {'autocast bf16' if precision == 'bfloat16' else 'fp32'}"
            # Logits are checked against PyTorch float32 (bfloat16: that of the inference part).
            truth = ("inference", "PyTorch fp32") if precision == "bfloat16" else None
            torch_case = dict(base, task="inference", side="torch")
            matrix.run(part, torch_label, torch_case, torch_label if truth else None, truth)
            for index, variant in enumerate(variants):
                label = f"Keras {variant}" + (" bf16" if precision == "bfloat16" else "")
                case = dict(base, task="inference", side="keras", variant=variant)
                # The nominal FLOPs of this configuration, counted once.
                case["count_flops"] = index == 0
                matrix.run(part, label, case, torch_label, truth)
    fill_flops(matrix)


def fill_flops(matrix):
    """Every row of a (backbone, size, batch) gets the FLOPs counted for it."""
    known = {}
    for row in matrix.results:
        if "flops" in row:
            case = row["case"]
            known[(case["backbone"], tuple(case["size"]))] = row["flops"] / case["batch"]
    for row in matrix.results:
        case = row.get("case", {})
        key = (case.get("backbone"), tuple(case.get("size", ())))
        if key in known and "median_s" in row and row["part"] != "training":
            row["flops"] = known[key] * case["batch"]


def int8_part(matrix, backbone, size, variants):
    weights = matrix.weights(backbone)
    base = dict(matrix.base(backbone, size), weights=weights)
    torch = matrix.find("inference", "PyTorch fp32", backbone, base["size"], 1)
    if torch is None:
        torch = matrix.run("int8", "PyTorch fp32", dict(base, task="inference", side="torch"))
    for variant in variants:
        path = os.path.join(matrix.work_dir, f"{backbone}_{size}_{variant}.tflite")
        precision = "int8" if variant != "float32" else "float32"
        export = dict(base, task="export", side="tflite", precision=precision, tflite_path=path)
        export["variant"] = "plain" if variant == "int8 before" else "optimized"
        made = run_case_in_child(
            export, timeout_s=matrix.args.timeout, max_rss_gb=matrix.args.max_rss_gb
        )
        label = f"LiteRT {variant}"
        if "error" in made:
            matrix.results.append({"part": "int8", "label": label, "case": base, **made})
            print(format_row(matrix.results[-1]), flush=True)
            continue
        case = dict(base, task="inference", side="tflite", precision=precision, tflite_path=path)
        row = matrix.run("int8", label, case, "PyTorch fp32", export_s=made["export_s"])
        if torch is not None and "error" not in torch and "error" not in row:
            row["ratio"] = row["median_s"] / torch["median_s"]
            row["logit_diff"], row["agreement"] = agreement(
                case["logits_path"], torch["case"]["logits_path"]
            )


def throughput_part(matrix, backbone, size, batches):
    weights = matrix.weights(backbone)
    for batch in batches:
        base = dict(matrix.base(backbone, size, batch=batch), weights=weights)
        matrix.run("throughput", "PyTorch fp32", dict(base, task="inference", side="torch"))
        case = dict(base, task="inference", side="keras", variant="optimized")
        matrix.run("throughput", "Keras optimized", case, "PyTorch fp32")


def training_part(matrix, backbone, cells):
    for size, batch in cells:
        base = matrix.base(backbone, size, batch=batch)
        base["repeats"] = matrix.args.repeats or min(2, default_repeats(size))
        torch = matrix.run("training", "PyTorch fp32", dict(base, task="training", side="torch"))
        for label, remat in (("Keras", False), ("Keras remat", True)):
            case = dict(base, task="training", side="keras", remat=remat)
            keras = matrix.run("training", label, case)
            if "error" not in keras and "error" not in torch:
                keras["ratio"] = keras["median_s"] / torch["median_s"]
                keras["memory_ratio"] = keras["peak_rss_mb"] / torch["peak_rss_mb"]


def levers_part(matrix, backbone, size, precision="float32"):
    """optimize_for_inference lever by lever, alternating in one process."""
    case = dict(matrix.base(backbone, size, precision=precision), task="levers", side="keras")
    case["repeats"] = matrix.args.repeats or 5
    result = run_case_in_child(
        case, timeout_s=matrix.args.timeout, max_rss_gb=matrix.args.max_rss_gb
    )
    matrix.results.append({"part": "levers", "label": "levers", "case": case, **result})
    if "error" in result:
        print(f"levers: {result['error']}")
        return
    for name, figures in result["levers"].items():
        print(
            f"| levers {precision} | {backbone} | {size} | 1 | {name} | {figures['median_s']:.3f} "
            f"(min {figures['min_s']:.3f}) | {figures['ratio']:.2f}x of plain | "
            f"| | {figures['logit_diff']:.1e} | |",
            flush=True,
        )


# === Output ===
def machine_line():
    from danet_keras.utils.cpu import kernels_description

    return f"CPU: {kernels_description()}"


def markdown(matrix):
    lines = [machine_line(), "", HEADER] + [
        format_row(row, matrix.peaks()) for row in matrix.results if row["part"] != "levers"
    ]
    return "\n".join(lines) + "\n"


def plot(matrix, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from danet_keras.utils.atomic_io import atomic_path

    lines = {}
    for row in matrix.results:
        if row["part"] != "inference" or "error" in row:
            continue
        case = row["case"]
        pixels = case["size"][0] * case["size"][1] / 1e6
        lines.setdefault(row["label"], []).append((pixels, row["median_s"], row["peak_rss_mb"]))
    if not lines:
        return None
    figure, (latency, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in sorted(lines.items()):
        points.sort()
        x = [p[0] for p in points]
        latency.plot(x, [p[1] for p in points], marker="o", label=label)
        memory.plot(x, [p[2] / 1024 for p in points], marker="o", label=label)
    for axis, title in ((latency, "latency (s)"), (memory, "peak RSS (GB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("megapixels per image")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    latency.legend(fontsize=8)
    figure.suptitle(
        "DANet inference vs resolution: naive (one-block) vs chunked position attention"
    )
    figure.tight_layout()
    with atomic_path(path) as staging:
        figure.savefig(staging, format="png", dpi=110)
    plt.close(figure)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(DEFAULT_PARTS))
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50", "resnet101"])
    parser.add_argument("--sizes", nargs="+", default=list(RESOLUTIONS))
    parser.add_argument(
        "--training-cells",
        nargs="+",
        default=[f"{size}:{batch}" for size, batch in TRAINING_CELLS],
        help="training steps to time, SIZE:BATCH (default %(default)s)",
    )
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--output-stride", type=int, default=8)
    parser.add_argument("--head-channels", type=int, default=None)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls (default 3, 2 from 512x1024, 1 above)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-rss-gb", type=float, default=DEFAULT_MAX_RSS_GB)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    parser.add_argument("--all", action="store_true", help="every backbone at every size")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: a CI smoke test")
    parser.add_argument(
        "-o",
        "--output",
        default="benchmark_results",
        help="folder of the tables (new, empty, or an earlier run's, whose tables are replaced)",
    )
    args = parser.parse_args(argv)
    from danet_keras.utils.output_paths import own_folder

    # Checked before hours of timing; the benchmark owns its folder.
    own_folder(args.output, "benchmark_results", "benchmark tables")

    main_backbone = "resnet50"
    training_cells = [tuple(cell.split(":")) for cell in args.training_cells]
    training_cells = [(size, int(batch)) for size, batch in training_cells]
    batches, focus = (1, 4, 8), "512x512"
    int8_variants = ["int8", "int8 before"]
    if args.smoke:
        args.backbones, args.sizes = SMOKE["backbones"], SMOKE["sizes"]
        args.head_channels, args.repeats = SMOKE["head_channels"], SMOKE["repeats"]
        main_backbone, training_cells, batches = (
            "resnet18",
            SMOKE["training_cells"],
            SMOKE["batches"],
        )
        focus = SMOKE["sizes"][0]
        if args.parts == list(DEFAULT_PARTS):
            args.parts = list(PARTS)
    with tempfile.TemporaryDirectory(prefix="vs_pytorch_") as work_dir:
        matrix = Matrix(args, work_dir)
        print(machine_line() + "\n", flush=True)
        print(HEADER, flush=True)
        # The bfloat16 peak only where bfloat16 rows are timed (the bf16 part and its levers).
        peak_case = {"task": "peak", "dtypes": ["float32"] + ["bfloat16"] * ("bf16" in args.parts)}
        matrix.results.append(
            {
                "part": "peak",
                "label": "matmul",
                "case": peak_case,
                **run_case_in_child(dict(peak_case, side="keras"), timeout_s=args.timeout),
            }
        )
        print(format_row(matrix.results[-1]), flush=True)
        if "inference" in args.parts:
            inference_part(
                matrix, "inference", [main_backbone], args.sizes, ["plain", "optimized", "naive"]
            )
        if "backbones" in args.parts:
            others = [b for b in args.backbones if b != main_backbone]
            sizes = args.sizes if args.all else [focus]
            inference_part(matrix, "backbones", others, sizes, ["plain", "optimized"])
        if "bf16" in args.parts:
            variants = ["plain", "optimized", "winograd"]
            inference_part(matrix, "bf16", [main_backbone], [focus], variants, "bfloat16")
        if "int8" in args.parts:
            int8_part(matrix, main_backbone, focus, int8_variants)
        if "throughput" in args.parts:
            throughput_part(matrix, main_backbone, focus, batches)
        if "serving" in args.parts:
            case = dict(matrix.base(main_backbone, focus), weights=matrix.weights(main_backbone))
            matrix.run(
                "serving", "SavedModel serving_default", dict(case, task="serving", side="keras")
            )
        if "training" in args.parts:
            training_part(matrix, main_backbone, training_cells)
        if "levers" in args.parts:
            levers_part(matrix, main_backbone, focus)
            if "bf16" in args.parts:
                levers_part(matrix, main_backbone, focus, "bfloat16")
        fill_flops(matrix)
        table = markdown(matrix)
        write_text(os.path.join(args.output, "vs_pytorch.md"), table)
        results = json.dumps(matrix.results, indent=1)
        write_text(os.path.join(args.output, "vs_pytorch.json"), results)
        picture = plot(matrix, os.path.join(args.output, "vs_pytorch.png"))
    print()
    print(table)
    print(f"wrote {args.output}/vs_pytorch.md, .json" + (", .png" if picture else ""))
    failures = [
        row for row in matrix.results if "error" in row and "out of memory" not in row["error"]
    ]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
