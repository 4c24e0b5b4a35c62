"""Lambda's limits as AWS enforces them (issue 11, finding 8): a function's memory is its
whole footprint, shared anonymous mappings included, and its ephemeral storage caps
what it writes under /tmp."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lambda_code import call, deploy  # noqa: E402

CODE = """
import errno, mmap, os
from concurrent.futures import ThreadPoolExecutor


def handler(event, context):
    if event["try"] == "mmap":
        m = mmap.mmap(-1, event["mb"] << 20)  # shared anonymous: RLIMIT_DATA alone does not see it
        for i in range(0, len(m), 4096):
            m[i] = 1
        return "mapped"
    if event["try"] == "threads":  # ordinary work with threads must still fit in 128 MB
        with ThreadPoolExecutor(4) as pool:
            return sum(pool.map(lambda n: len(bytearray(1 << 20)) + n, range(64)))
    if event["try"] == "tmp":
        try:
            with open("/tmp/big", "wb") as f:
                f.seek(600 << 20)  # sparse: the size counts, not the blocks written
                f.write(b"x")
            return "written"
        except OSError as exc:
            return errno.errorcode[exc.errno]
        finally:
            if os.path.exists("/tmp/big"):
                os.remove("/tmp/big")
"""


def test_memory_counts_shared_mappings_and_tmp_is_capped(unkai):
    lam = unkai.client("lambda")
    small = deploy(lam, CODE, MemorySize=128, Timeout=30)
    resp, payload = call(lam, small, {"try": "mmap", "mb": 2048})  # past the address-space cap: refused
    assert resp.get("FunctionError") == "Unhandled", payload
    assert payload["errorType"] == "OSError" and "Cannot allocate memory" in payload["errorMessage"], payload
    resp, payload = call(lam, small, {"try": "mmap", "mb": 512})  # mapped, then touched past 128 MB: killed
    assert resp.get("FunctionError") == "Unhandled", payload
    assert payload["errorType"] == "Runtime.OutOfMemory", payload
    resp, payload = call(lam, small, {"try": "threads"})
    assert "FunctionError" not in resp, payload
    assert payload == 64 * (1 << 20) + sum(range(64))
    _, payload = call(lam, small, {"try": "tmp"})
    assert payload == "EFBIG"  # past 512 MB, the default EphemeralStorage
    large = deploy(lam, CODE, MemorySize=128, EphemeralStorage={"Size": 1024})
    _, payload = call(lam, large, {"try": "tmp"})
    assert payload == "written"
    assert json.loads(json.dumps(lam.get_function_configuration(FunctionName=large)["EphemeralStorage"])) \
        == {"Size": 1024}
