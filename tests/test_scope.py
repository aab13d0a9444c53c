"""The out-of-scope lists name real public APIs, and nothing is both an entry and out of scope.

Names are resolved in a subprocess per framework (TensorFlow and Paddle cannot share one).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from conformance import adapters

RESOLVE = """
import json, sys
from conformance import adapters
from conformance.adapters._spec import resolve_dotted
module = adapters.load(sys.argv[1])
missing = []
for api, _ in module.OUT_OF_SCOPE_APIS:
    if api.startswith("torchvision."):
        continue  # named as not part of the framework
    try:
        resolve_dotted(api, {"tf": "tensorflow", "jnp": "jax.numpy"})
    except (ImportError, AttributeError) as exc:
        missing.append(f"{api}: {exc}")
print(json.dumps(missing))
"""


@pytest.mark.parametrize("framework", list(adapters.MODULES))
def test_out_of_scope_apis_exist_and_are_not_entries(framework: str) -> None:
    module = adapters.load(framework)
    listed = [api for api, _ in module.OUT_OF_SCOPE_APIS]
    assert listed and len(listed) == len(set(listed))
    assert all(reason for _, reason in module.OUT_OF_SCOPE_APIS)
    entries = {e.api.split("(")[0].split("[")[0] for e in module.ENTRIES}
    assert not set(listed) & entries
    if any(importlib.util.find_spec(r) is None for r in module.REQUIRES):
        pytest.skip(f"{framework} is not installed")
    out = subprocess.run(
        [sys.executable, "-c", RESOLVE, framework],
        capture_output=True,
        text=True,
        timeout=300,
        env={"KERAS_BACKEND": "tensorflow", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
