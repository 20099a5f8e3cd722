"""Write a sample history as JSON lines for ``python -m memory import``.

    python examples/sample_history.py --users 10 > history.jsonl

The conversations come from the benchmark's seeded generator (months of
sessions per user with planted facts); the questions it would ask go to stderr
so you can try them with ``python -m memory context USER "QUESTION"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.generator import GenConfig, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    dataset = generate(GenConfig(users=args.users, seed=args.seed))
    for e in dataset.exchanges:
        print(json.dumps({"id": e.id, "user_id": e.user_id, "guild_id": e.guild_id, "channel_id": e.channel_id,
                          "user_message": e.user_message, "bot_response": e.bot_response,
                          "timestamp": e.timestamp.isoformat()}))
    for q in dataset.questions[:10]:
        scope = f" --guild {q.guild_id}" if q.guild_id else ""
        print(f'python -m memory context {q.user_id}{scope} "{q.text}"   # answer: {q.answer}', file=sys.stderr)


if __name__ == "__main__":
    main()
