"""Several bot accounts on one PostgreSQL (DESIGN §6): account leases and per-group duty
(duty.py), notices between the processes (bus.py: LISTEN/NOTIFY), and actions handed to the
account on duty in another group (handoff.py).

Core-level: imports bot.core and the database driver only, never an adapter or a plugin.
"""

from bot.cluster.duty import ClusterDuty, ClusterUnavailable
from bot.cluster.settings import ClusterSettings

__all__ = ["ClusterDuty", "ClusterSettings", "ClusterUnavailable"]
