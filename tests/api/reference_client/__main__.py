"""`python -m tests.api.reference_client --base-url URL --username U --password P`: the contract tally."""

from __future__ import annotations

import argparse
import sys
import time

from .checks import Checks
from .runner import Runner, client_for
from .scenarios import ALL


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.api.reference_client", description=__doc__)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--only", action="append", default=[],
                    help="run only scenarios whose name contains this text (repeatable)")
    ap.add_argument("--report", help="also write the JSON report to this path")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failing contract check")
    args = ap.parse_args(argv)

    scenarios = [s for s in ALL if not args.only or any(o in s.name for o in args.only)]
    checks = Checks()
    with client_for(args.base_url) as http:
        runner = Runner(http, args.username, args.password, checks)
        for s in scenarios:
            start = time.monotonic()
            runner.run(s)
            failed = checks.failures(s.name)
            print(f"{'FAIL' if failed else 'ok  '} {s.name} ({time.monotonic() - start:.1f}s, "
                  f"{len(failed)} contract checks failed)", flush=True)
            if args.verbose:
                for f in failed:
                    print(f"       - {f.description}: {f.detail}")
    print()
    print("\n".join(checks.summary_lines()))
    if args.report:
        checks.write(args.report)
    return 0 if not checks.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
