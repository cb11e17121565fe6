"""`python -m danet_keras.apps.benchmark CASE_JSON`: one case, in this process (the child)."""

import json
import sys

from danet_keras.apps.benchmark.cases import run_case
from danet_keras.apps.benchmark.child import RESULT_PREFIX

if __name__ == "__main__":
    print(RESULT_PREFIX + json.dumps(run_case(json.loads(sys.argv[1]))), flush=True)
