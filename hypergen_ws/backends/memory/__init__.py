"""The memory engine: the state of one process (the in-memory layer, no layer, or a layer of another kind)."""
from .engine import MemoryEngine, memory_engine
from .store import MemoryStore, memory_store

__all__ = ["MemoryEngine", "MemoryStore", "memory_engine", "memory_store"]
