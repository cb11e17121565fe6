"""The user-facing jobs that the command line runs: `predict`, `demo`, `benchmark`.

Each is a library module a notebook calls the same way as the CLI
(`danet_keras.apps.demo.run_demo`, `danet_keras.apps.predict.predict_files`, ...).
"""
