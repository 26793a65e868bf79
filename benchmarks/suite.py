"""Section "tests": the whole test command, timed once (off unless ``--with-test-command``)."""
from __future__ import annotations

import re
import subprocess
import time

from .config import REPO, Config, env_var, fresh_cache


def measure(cfg: Config) -> dict:
    """Seconds, exit status and pytest's summary line of ``cfg.test_command``."""
    if not cfg.with_test_command:
        why = "--skip-tests was given" if cfg.skip_tests else "off by default: it takes many minutes"
        return {"measured": False, "command": cfg.test_command, "why": why}
    log = cfg.tmp / "test-command.log"
    print(f"running `{cfg.test_command}` (log: {log}) ...", flush=True)
    with fresh_cache(cfg, "tests"), env_var("TLLAB_RESULTS_DIR", None), open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.run(cfg.test_command, shell=True, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    summaries = re.findall(r"^=+ (.*? in [\d.]+s.*?) =+$", text, flags=re.M)
    fresh = re.findall(r"^fresh clone: (.*)$", text, flags=re.M)   # scripts/fresh_clone_test.sh: setup vs tests
    return {"measured": True, "command": cfg.test_command, "seconds": seconds, "returncode": proc.returncode,
            "summary": summaries[-1] if summaries else "(no pytest summary line found)",
            **({"detail": fresh[-1]} if fresh else {})}
