"""Small utilities used by every layer of the package; they import nothing else of it.

`atomic_io` (files written whole and durably), `output_paths` (writers never replace what
danet-keras did not write), `native_log` (TensorFlow's C++ log kept quiet), `lazy` (lazy
package attributes, module aliases and Keras registration).
"""
