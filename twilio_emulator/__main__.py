"""``python -m twilio_emulator --port 8899 [--account SID:TOKEN] [--rewrite FROM=TO]``"""

from __future__ import annotations

import argparse
import signal
import threading

from twilio_emulator.calls import OUTCOMES, Scenario
from twilio_emulator.emulator import TwilioEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m twilio_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--account", action="append", default=[], metavar="SID:TOKEN")
    parser.add_argument("--rewrite", action="append", default=[], metavar="FROM=TO")
    parser.add_argument("--outcome", choices=OUTCOMES, default="answer")
    parser.add_argument("--ring-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    accounts = dict(item.split(":", 1) for item in args.account)
    rewrite = dict(item.split("=", 1) for item in args.rewrite)
    emulator = TwilioEmulator(
        accounts or None,
        host=args.host,
        port=args.port,
        rewrite=rewrite,
        default_scenario=Scenario(outcome=args.outcome, ring_seconds=args.ring_seconds),
    ).start()
    for sid, token in emulator.accounts.items():
        print(f"account {sid} auth token {token}")
    print(f"Twilio emulator REST API on {emulator.base_url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    emulator.stop()


if __name__ == "__main__":
    main()
