"""Section "lessons": every lesson in quick mode, executed by papermill, from an empty feature cache."""
from __future__ import annotations

from tqdm import tqdm

from .config import Config, env_var, fresh_cache
from .measure import median


def measure(cfg: Config) -> dict:
    """Seconds per lesson (median of ``cfg.lesson_repeats`` passes) and the total of those that ran."""
    from tlwidgets import course
    from tlwidgets.results import RESULTS_ENV

    params = {"quick": True, "device": cfg.device_arg, "seed": 0}
    lessons = course.find_lessons()
    runs: dict[str, list] = {p.stem: [] for p in lessons}
    with env_var("TLLAB_HEADLESS", "1"), env_var(RESULTS_ENV, None):
        for rep in range(cfg.lesson_repeats):
            # one cold feature cache per pass, shared by the lessons in order: a fresh `make course`
            with fresh_cache(cfg, f"lessons-{rep}"):
                for path in tqdm(lessons, desc=f"lessons (pass {rep + 1}/{cfg.lesson_repeats})", unit="lesson"):
                    runs[path.stem].append(course.run_lesson(path, cfg.tmp / f"lessons-{rep}", params, html=False))
    rows = []
    for stem, rs in runs.items():
        status = "failed" if any(r.status == "failed" for r in rs) else rs[-1].status
        rows.append({"lesson": stem, "status": status, "seconds": [round(r.seconds, 1) for r in rs],
                     "median_s": median([r.seconds for r in rs]), "message": rs[-1].message})
    total = sum(r["median_s"] for r in rows if r["status"] != "skipped")
    return {"params": params, "lesson_repeats": cfg.lesson_repeats, "lessons": rows, "total_s": total,
            "ok": not any(r["status"] == "failed" for r in rows)}
