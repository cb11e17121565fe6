from danet_keras.utils.cpu import cpu_description, cpu_isa, kernels_description

AVX512 = """processor\t: 0
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16
"""
AVX2 = """processor\t: 0
model name\t: AMD EPYC 7R13 Processor
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_isa_names_the_extensions_that_pick_kernels():
    assert cpu_isa(AVX512) == ("AVX-512", "VNNI", "BF16", "AVX2")
    assert cpu_isa(AVX2) == ("AVX2",)
    assert cpu_isa("") == ()


def test_description_names_model_cores_and_widest_isa():
    assert cpu_description(AVX512).startswith("AMD EPYC 9R14, ")
    assert cpu_description(AVX512).endswith(" cores, AVX-512 (VNNI, BF16)")
    assert cpu_description(AVX2).endswith(" cores, AVX2 only (no AVX-512)")
    assert cpu_description("").startswith("unknown CPU, ")


def test_kernels_description_names_what_the_environment_changes():
    assert kernels_description(AVX2, {}) == cpu_description(AVX2)
    capped = kernels_description(AVX512, {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert capped.endswith("AVX-512 (VNNI, BF16); oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA)")
    off = kernels_description(AVX512, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert off.endswith("; oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)")
