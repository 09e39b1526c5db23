"""`bva sandbox drill ACTION [SERVER]`: ask the running sandbox for a database drill over its
private socket (in the sandbox's runtime dir, mode 0600). One line of what was done; exit 0
done, 1 no sandbox (or it has no database, or the servers refused), 2 a drill asked wrong."""

from __future__ import annotations

import argparse
import json
import socket
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def cmd_drill(args: argparse.Namespace) -> int:
    from backends.sandbox.runner import drill_socket
    from backends.sandbox.state import read_state

    state = read_state()
    if state is None:
        print("bva: no sandbox is running: start one with 'bva sandbox'", file=sys.stderr)
        return EXIT_FAIL
    if state.database is None:
        print("bva: the running sandbox has no database (started with --no-db)", file=sys.stderr)
        return EXIT_FAIL
    request = {"action": args.action, "server": args.server}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            # A drill that stops a server waits for it to stop: give it time.
            sock.settimeout(60)
            sock.connect(str(drill_socket()))
            sock.sendall(json.dumps(request).encode() + b"\n")
            raw = sock.makefile("rb").readline()
        answer = json.loads(raw)
    except (OSError, ValueError) as exc:
        print(f"bva: the sandbox did not answer the drill: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAIL
    if not answer.get("ok"):
        print(f"bva: {answer.get('message', 'drill refused')}", file=sys.stderr)
        # Asked wrong (no such server, a replica-only drill on the primary) is a usage error;
        # a server that refused or went away is a failure.
        return EXIT_USAGE if answer.get("usage", True) else EXIT_FAIL
    print(answer.get("message", ""))
    return EXIT_OK
