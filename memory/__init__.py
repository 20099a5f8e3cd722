"""mnemo's memory library: four storage tiers behind one manager.

    from memory import HierarchicalMemoryManager, ConversationContext
"""

from memory.context import ConversationContext, RankedExchange
from memory.errors import (
    ArchiveUnavailable,
    ConfigurationError,
    ForgetPending,
    InvalidInput,
    MemoryPaused,
    MemoryStoreError,
    NotFound,
    RateLimited,
    TierUnavailable,
)
from memory.manager import HierarchicalMemoryManager
from memory.settings import MemorySettings

__all__ = [
    "ArchiveUnavailable", "ConfigurationError", "ConversationContext", "ForgetPending",
    "HierarchicalMemoryManager", "InvalidInput", "MemoryPaused", "MemorySettings", "MemoryStoreError", "NotFound",
    "RankedExchange", "RateLimited", "TierUnavailable",
]
