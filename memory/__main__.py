"""``python -m memory``: the memory library's command line."""

from memory.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
