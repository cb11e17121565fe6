"""Full-integer TFLite conversion that keeps the attention arithmetic in float32.

Measured op by op (`benchmarks/int8_profile.py`, DANet-ResNet50 at 512x512,
LiteRT with XNNPACK on an AVX-512 VNNI CPU): in a graph quantized entirely to
int8, XNNPACK takes the convolutions but not the attention's BATCH_MATMULs
(both operands computed at run time, which its int8 path does not take) nor
its int8 SOFTMAX, so the position attention's two (4096 x 4096) products and
softmax fall back to TFLite's builtin int8 kernels: 1.27 s in the profile,
12x their float32 time under XNNPACK (the channel attention: 0.28 s, also
12x), more than the int8 convolutions saved. In isolation they also lose
accuracy: the channel attention's energy (sums of 4096 products) and its
`max - energy` step do not survive one int8 scale.

Keeping those ops in float32 (TFLite's selective quantization:
`tf.lite.experimental.QuantizationDebugger` with `denylisted_ops`) hands
them to XNNPACK's float32 kernels, with a QUANTIZE / DEQUANTIZE at each end;
every convolution stays int8.
"""

import tensorflow as tf

# Ops computed in float32 in an int8 model: the attentions' products and
# softmaxes (also the output's probabilities), and the channel attention's
# row max and `max - energy` (SUB also normalises the input image, in float).
FLOAT_OPS_IN_INT8 = ("BATCH_MATMUL", "SOFTMAX", "REDUCE_MAX", "SUB")


def convert_int8(converter, float_ops=FLOAT_OPS_IN_INT8):
    """Converts to a full-integer TFLite model, except for `float_ops`.

    Args:
        converter: a `tf.lite.TFLiteConverter` with its
            `representative_dataset` set (the calibration inputs).
        float_ops: TFLite op names kept in float32; empty: every op int8
            (what the converter does by itself).

    Returns:
        The `.tflite` flatbuffer (bytes).
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if not float_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
    # Float kernels for the denylisted ops, int8 ones for the rest.
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=converter.representative_dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)),
    )
    return debugger.get_nondebug_quantized_model()
