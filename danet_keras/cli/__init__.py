"""The `danet-keras` command line: a thin shell over library functions."""
