"""What the per-message bookkeeping costs: ``python -m bench.message_overhead``.

Times, on bundled servers (or the ones configured), the archive work the bot adds
to each message besides the context: ``message_state`` (pause, notice and guild
settings in one query) and ``store_conversation`` (with its message id, the pause
check and the new indexes). Prints JSON; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.common import emit, memory_settings, progress, summary_ms


async def measure(n: int) -> dict[str, object]:
    from memory.manager import HierarchicalMemoryManager

    with memory_settings() as (settings, _external, namespace):
        settings.worker.in_process = False  # time the write path alone, not the derived work
        async with HierarchicalMemoryManager.from_env(settings) as memory:
            progress(f"warming up, then {n} messages")
            users = [f"{namespace}-u{i}" for i in range(50)]
            for i in range(100):
                await memory.message_state(users[i % 50], "g1")
                await memory.store_conversation(users[i % 50], f"warm-up {i}", "ok", guild_id="g1")
            state, store = [], []
            for i in range(n):
                user = users[i % 50]
                start = time.perf_counter()
                await memory.message_state(user, "g1")
                state.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                await memory.store_conversation(user, f"message {i} about gardening and tomatoes", "Nice!",
                                                guild_id="g1", channel_id="c1", message_id=str(10**17 + i))
                store.append((time.perf_counter() - start) * 1000)
    return {"benchmark": "message_overhead", "messages": n, "message_state_ms": summary_ms(state),
            "store_conversation_ms": summary_ms(store)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.message_overhead", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    emit(asyncio.run(measure(args.messages)))


if __name__ == "__main__":
    main()
