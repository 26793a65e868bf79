"""``python -m tlwidgets.data download mnist|pets`` and ``python -m tlwidgets.data where`` (see :mod:`.cli`)."""
from .cli import main

raise SystemExit(main())
