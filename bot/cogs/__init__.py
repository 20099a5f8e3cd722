"""Slash commands: ``/memory ...`` (memory.py) and ``/remember``, ``/forget-fact`` (facts.py)."""
