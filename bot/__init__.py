"""mnemo's Discord bot: chat with memory, slash commands and a console mode.

Entry point: ``python -m bot`` (Discord) or ``python -m bot console`` (terminal).
"""
