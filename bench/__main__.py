"""`python -m bench scale|stage`: the orchestrator's own cost, measured as users would see it.

Timing goals live here and in BENCHMARKS.md, never in the test suite. The other scripts of this
folder (`python -m bench.turn_end`, `bench.many_waits`, `bench.worktrees`, `bench.usage_read`)
each measure one mechanism.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.units import parse_duration


def main(argv: list[str]) -> int:
    """Parse the subcommand and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    commands = parser.add_subparsers(dest="command", required=True)
    scale = commands.add_parser("scale", help="many stories at once against ideal")
    scale.add_argument("--stories", type=int, default=100)
    scale.add_argument("--parallel", type=int, default=8)
    scale.add_argument("--work", default="1s", help="agent work per stage, e.g. 1s or 500ms")
    scale.add_argument("--profile", type=Path, help="record the run with py-spy into this file")
    stage = commands.add_parser("stage", help="one stage's overhead against bare tmux")
    stage.add_argument("--stories", type=int, default=10)
    profile = commands.add_parser("profile", help="where a profiled run's CPU went")
    profile.add_argument("raw", type=Path, help="py-spy raw output (from scale --profile)")
    args = parser.parse_args(argv)
    if args.command == "profile":
        from bench.profile import report as profile_report

        print(profile_report(args.raw))
        return 0
    if args.command == "scale":
        from bench.scale import report
        from bench.scale import scale as run_scale

        work = parse_duration(args.work)
        measured, ideal = run_scale(args.stories, args.parallel, work, profile=args.profile)
        print(report(args.stories, args.parallel, work, measured, ideal))
    else:
        from bench.stage import stage as run_stage

        print(run_stage(args.stories))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
