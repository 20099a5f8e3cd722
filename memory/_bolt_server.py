"""Run the bundled Bolt server (ArcadeDB with its Bolt plugin) until SIGTERM.

Started by ``memory.launcher`` as its own process so the JVM never lives in the
bot's process. Prints one line ``ready <bolt_port>`` on stdout once the graph
database accepts connections.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--bolt-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--database", default="memory")
    args = parser.parse_args()
    password = os.environ["MNEMO_BOLT_PASSWORD"]  # passed by the launcher, never on the command line
    os.makedirs(args.root, exist_ok=True)
    os.chdir(args.root)  # ArcadeDB writes ./log in its working directory

    import arcadedb_embedded as adb

    server = adb.create_server(
        root_path=os.path.join(args.root, "databases"), root_password=password,
        config={"http_port": args.http_port, "host": "127.0.0.1",
                "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
                "bolt_port": args.bolt_port})
    server.start()
    try:
        server.get_database(args.database)
    except Exception:
        server.create_database(args.database)
    signal.signal(signal.SIGTERM, lambda *_: None)
    print(f"ready {args.bolt_port}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
