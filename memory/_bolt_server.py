"""Run the bundled Bolt server (ArcadeDB with its Bolt plugin) until its stdin closes.

Started by ``memory.launcher`` as its own process so the JVM never lives in the
bot's process. Prints one line ``ready <bolt_port>`` on stdout once the graph
database accepts connections, then serves until the launcher closes our stdin
(it does so to stop us, and the OS does so if the launcher dies), and stops the
database cleanly. Signals are not used: the JVM takes SIGTERM for itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading


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
    print(f"ready {args.bolt_port}", flush=True)
    sys.stdin.read()  # returns at EOF: the launcher closed the pipe, or exited
    # ArcadeDB's stop waits for open Bolt client connections to end; the databases are
    # closed (committed work is on disk) before that, so give it a few seconds and go.
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(8)
    os._exit(0)


if __name__ == "__main__":
    main()
