"""Benchmarks of the course and its training paths (not part of the installed ``tlwidgets`` package).

    .venv/bin/python -m benchmarks --help          # measure (``make benchmark``), save JSON, render the doc
    .venv/bin/python -m benchmarks.render          # re-render docs/benchmarks.md from docs/benchmarks.json

Layout: ``measure`` holds the clocks and counters every section uses;
one module per section returns plain data (``lessons``, ``suite``,
``forward``, ``caching``, ``chart``, ``data_loading``, ``peers``,
``tuning``); ``run`` is the command line; ``render`` formats saved data
and judges it against the targets.
"""
