"""Storage: SQLModel tables, the async database handle, the activity recorder, repositories."""

from bot.storage.db import Database
from bot.storage.recorder import Recorder
from bot.storage.repo import GroupRepo, KeyValueRepo, MembershipRepo, PluginStateRepo
from bot.storage.settings import StorageSettings

__all__ = [
    "Database",
    "GroupRepo",
    "KeyValueRepo",
    "MembershipRepo",
    "PluginStateRepo",
    "Recorder",
    "StorageSettings",
]
