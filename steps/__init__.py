"""One thin command-line module per MLproject entry point.

``python -m steps.<name>`` imports this package first: if a warm server runs (``make warm``), the
step is handed over to it here, before anything heavy is imported (:mod:`psystock.handover`).
"""

from psystock.handover import hand_over

hand_over()
