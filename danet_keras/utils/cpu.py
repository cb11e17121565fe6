"""What CPU a measurement ran on: model name, cores and the vector ISA that picks kernels.

oneDNN chooses its kernels by ISA (AVX2, AVX-512, VNNI, BF16) and thread count, so a
timing means little without them; benchmark tables print `cpu_description()`.
"""

import os

# Flag of /proc/cpuinfo -> the name tables use, widest first.
ISA_FLAGS = (
    ("avx512f", "AVX-512"),
    ("avx512_vnni", "VNNI"),
    ("avx512_bf16", "BF16"),
    ("amx_tile", "AMX"),
    ("avx2", "AVX2"),
)


def _cpuinfo(path="/proc/cpuinfo"):
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # not Linux: the name and ISA are unknown, the core count is not
        return ""


def cpu_isa(cpuinfo=None):
    """The vector extensions present, e.g. `("AVX-512", "VNNI", "BF16", "AVX2")`.

    Args:
        cpuinfo: the text of /proc/cpuinfo (None: read it).

    Returns:
        A tuple of names from `ISA_FLAGS`, empty where /proc/cpuinfo is absent.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return tuple(name for flag, name in ISA_FLAGS if flag in flags)


def cpu_description(cpuinfo=None):
    """One line naming the CPU, e.g. "AMD EPYC 9R14, 2 cores, AVX-512 (VNNI, BF16)".

    Args:
        cpuinfo: the text of /proc/cpuinfo (None: read it).

    Returns:
        str: model name, usable cores and the widest ISA with its extensions.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    name = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line),
        "unknown CPU",
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    isa = cpu_isa(text)
    if "AVX-512" in isa:
        extras = [name for name in isa if name in ("VNNI", "BF16", "AMX")]
        vector = "AVX-512" + (f" ({', '.join(extras)})" if extras else "")
    elif "AVX2" in isa:
        vector = "AVX2 only (no AVX-512)"
    else:
        vector = "ISA unknown"
    return f"{name}, {cores} cores, {vector}"


def onednn_turned_off(environ=None):
    """Whether `TF_ENABLE_ONEDNN_OPTS` turns TensorFlow's oneDNN kernels off."""
    environ = os.environ if environ is None else environ
    return environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("0", "false")


def kernels_description(cpuinfo=None, environ=None):
    """`cpu_description()` and what this process's environment changes in the kernels.

    E.g. "AMD EPYC 9R14, 2 cores, AVX-512 (VNNI, BF16); oneDNN capped at AVX2
    (ONEDNN_MAX_CPU_ISA)": the line benchmark tables start with.
    """
    environ = os.environ if environ is None else environ
    notes = []
    if onednn_turned_off(environ):
        notes.append("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)")
    for variable in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        if environ.get(variable):
            notes.append(f"oneDNN capped at {environ[variable]} ({variable})")
    return "; ".join([cpu_description(cpuinfo)] + notes)
