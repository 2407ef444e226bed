"""docs/operations.md "A leaked key", step 1, run as written (docs/security.md, Part AP): the JSON list it builds
for PENSION_CERT_SIGNING_KEYS_LEAKED holds the old key exactly, whatever characters the key has. Built by string
pasting ("[\"$KEY\"]"), a key holding " or \\ made invalid JSON, and every command then refused to start in the
middle of the incident."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _step_one() -> str:
    """The lines of the leaked-key block from its step 1 to its step 2 (comments included: bash skips them)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index("**A leaked key.**")
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block is not None
    lines = block.group(1).split("\n# 2.")[0].splitlines()
    return "\n".join(line for line in lines if not line.startswith("NEW="))


KEYS = ['a"quoted"-key-0123456789abcdef', "back\\slash\\key-0123456789abcdef", "plain-hex-0a1b"]


@pytest.mark.parametrize("key", KEYS)
def test_the_leaked_key_step_makes_a_json_list_of_the_old_key(key: str) -> None:
    script = _step_one() + '\nprintf "%s\\n%s" "$PENSION_CERT_SIGNING_KEYS_LEAKED" "$PENSION_CERT_SIGNING_KEY"\n'
    env = {"PATH": os.environ["PATH"], "PENSION_CERT_SIGNING_KEY": key, "NEW": "the-new-key"}
    proc = subprocess.run(["bash", "-ec", script], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    leaked, current = proc.stdout.split("\n")
    assert json.loads(leaked) == [key]
    assert current == "the-new-key"
