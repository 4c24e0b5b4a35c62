"""The server's own CPU until ready (``time.process_time``: this process, all its threads,
without the Lambda workers it starts), of ``unkai up ARGS`` run in this process: the figure
that start-up work in unkai changes, steadier than ``bench/startup.py``'s "CPU until ready",
which also counts reaped children (custom resources' Lambda workers).

    python bench/startup_inprocess.py [--src DIR] -- [unkai up arguments]
    python bench/startup_inprocess.py -- --no-template --ephemeral --port 0 -q
    (cd /tmp/before && python /work/main/bench/startup_inprocess.py --src /tmp/before -- examples/qa-form --ephemeral --port 0 -q)

Prints one JSON line: cpu_ms, the reaped children's CPU, and whether samtranslator/boto3
were imported. Run it a few times in turns for before/after, with bytecode cached (unset
``PYTHONDONTWRITEBYTECODE`` once so the caches are written).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--src"]:
        src, argv = argv[1], argv[2:]
        sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        sys.path.insert(0, src)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    started = time.process_time()
    import unkai.server as server
    from unkai import cli

    run = server.run

    def measured(config, announce=print):  # type: ignore[no-untyped-def]
        def ready(text: str) -> None:
            times = os.times()
            print(json.dumps({"cpu_ms": round((time.process_time() - started) * 1000),
                              "children_cpu_ms": round((times.children_user + times.children_system) * 1000),
                              "samtranslator": "samtranslator" in sys.modules, "boto3": "boto3" in sys.modules,
                              "modules": len(sys.modules)}), flush=True)
            os.kill(os.getpid(), signal.SIGINT)
        return run(config, ready)

    server.run = measured
    sys.argv = ["unkai", "up", *argv]
    try:
        cli.main()
    except SystemExit:
        pass
