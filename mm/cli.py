"""The `mm` command line: the outermost shell (nothing else in mm/ imports it).

Exit codes: 0 ok, 2 bad usage or config, 1 runtime failure; errors go to stderr in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mm.config import Config, load_config
from mm.errors import ConfigError, MMError

if TYPE_CHECKING:  # the commands import their modules lazily: `mm --help` stays fast
    from mm.capture import CaptureStats


class UsageError(MMError):
    """Bad command-line usage."""


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="pipeline config (TOML); default: the built-in sim config")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mm", description="High-frequency market maker: six processes over ZeroMQ.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline (default: the built-in simulated venue)")
    _add_config(run)
    run.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: until Ctrl-C)")
    run.add_argument("--report", type=Path, default=None, help="write the JSON run report here")
    run.add_argument("--quiet", action="store_true", help="no status line each second")

    replay = sub.add_parser("replay", help="the whole pipeline over captured feeds")
    replay.add_argument("feeds", nargs="+", type=Path, metavar="FEED")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None, help="X times real time")
    pace.add_argument("--max", action="store_true", help="as fast as possible (the default)")
    replay.add_argument("--engine", choices=("inproc", "processes"), default=None,
                        help="the six stages' steps in this process (default unless --speed), or six processes")
    _add_config(replay)
    replay.add_argument("--symbol", default=None, help="symbol to trade (default: the first with a snapshot)")
    replay.add_argument("--report", type=Path, default=None, help="write the JSON run report here")
    replay.add_argument("--quiet", action="store_true", help="no status line each second")

    console = sub.add_parser("console", help="the operator console (one-shot or interactive)")
    _add_config(console)
    console.add_argument("--json", action="store_true", help="print replies as JSON")
    console.add_argument("--timeout-ms", type=int, default=1000, help="per-try reply timeout (Lazy Pirate)")
    console.add_argument("words", nargs="*", help="COMMAND [ARGS]; none = interactive")

    book = sub.add_parser("book", help="the book builder alone over captures")
    book.add_argument("feeds", nargs="+", type=Path, metavar="FEED")
    book.add_argument("--depth", type=int, default=10)
    book.add_argument("--json", action="store_true")

    report = sub.add_parser("report", help="run reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    compare = report_sub.add_parser("compare", help="two runs side by side")
    compare.add_argument("a", type=Path, metavar="A.json")
    compare.add_argument("b", type=Path, metavar="B.json")
    fit = report_sub.add_parser("latency", help="fit the order-entry / cancel latency from gateway journals")
    fit.add_argument("journals", nargs="+", type=Path, metavar="JOURNAL")
    fit.add_argument("--json", action="store_true")

    # their arguments come with heavy imports (picows, aiohttp): only when that command runs
    venue = sub.add_parser("venue", help="a local exchange on loopback (Binance spot, USD-M or Hyperliquid protocol)")
    capture = sub.add_parser("capture", help="record raw frames from a live (or local) venue")
    keys = sub.add_parser("keys", help="API key files and console CURVE keys")
    if command == "venue":
        from processes.venue_market import add_venue_arguments

        add_venue_arguments(venue)
    elif command == "capture":
        from processes.capture_writer import add_capture_arguments

        add_capture_arguments(capture)
    elif command == "keys":
        from processes.keys_cli import add_keys_arguments

        add_keys_arguments(keys)

    bench = sub.add_parser("bench", help="benchmarks of the whole pipeline")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    latency = bench_sub.add_parser("latency", help="tick-to-order latency of the six-process pipeline")
    _add_config(latency)
    latency.add_argument("--pin", action="store_true",
                         help="pin each process: to its configured cpu where set, else one core each in order")
    latency.add_argument("--json", action="store_true")
    latency.add_argument("--events", type=int, default=3000, help="synthetic events (warm-up dropped)")
    latency.add_argument("--rate", type=float, default=1000.0, help="events per second")
    return parser


def _config(path: str | None) -> Config:
    return load_config(path)


def cmd_run(args: argparse.Namespace) -> int:
    from processes.launcher import run_pipeline

    config = _config(args.config)
    if args.duration is not None and not args.duration > 0:  # NaN too: it would never end
        raise UsageError(f"--duration must be > 0, was {args.duration}")
    return run_pipeline(config, args.config, duration_s=args.duration, report_path=args.report, quiet=args.quiet)


def cmd_replay(args: argparse.Namespace) -> int:
    from processes.launcher import run_replay

    from mm.venue_books import venue_of_file

    venues = set()
    for path in args.feeds:
        if not path.is_file():
            raise UsageError(f"{path}: no such capture file")
        venues.add(venue_of_file(path) or "binance")
    if len(venues) > 1:
        raise UsageError(f"the captures are of several venues ({', '.join(sorted(venues))}): replay one venue at a time")
    if args.speed is not None and args.speed <= 0:
        raise UsageError(f"--speed must be > 0, was {args.speed}")
    engine = args.engine or ("processes" if args.speed is not None else "inproc")
    if engine == "inproc" and args.speed is not None:
        raise UsageError("--speed paces the six processes: use it with --engine processes "
                         "(the in-process engine replays as fast as possible)")
    return run_replay(_config(args.config), args.feeds, symbol=args.symbol, speed=args.speed or 0.0,
                      report_path=args.report, quiet=args.quiet, engine=engine)


def cmd_console(args: argparse.Namespace) -> int:
    from processes.console import run_console

    if args.timeout_ms <= 0:  # zmq polls forever on a negative timeout: the console must never hang
        raise UsageError(f"--timeout-ms must be > 0, was {args.timeout_ms}")
    return run_console(_config(args.config), args.words, as_json=args.json, timeout_ms=args.timeout_ms)


def cmd_book(args: argparse.Namespace) -> int:
    from mm.book_replay import build_books, format_table
    from mm.capture import CaptureStats
    from mm.venue_books import CHECKED_VENUES, build_checked_books, venue_of_file

    if args.depth < 1:
        raise UsageError(f"--depth must be >= 1, was {args.depth}")
    for path in args.feeds:
        if not path.is_file():
            raise UsageError(f"{path}: no such capture file")
    venues = {path: venue_of_file(path) for path in args.feeds}
    checked = [p for p, v in venues.items() if v in CHECKED_VENUES]  # the other venues' own book rules
    binance = [p for p in args.feeds if p not in checked]
    stats = CaptureStats()
    result = build_books(binance, args.depth, stats) if binance else {}
    if checked:
        result.update(build_checked_books(checked, args.depth, stats))
    print(json.dumps(result) if args.json else format_table(result))
    for book in result.values():  # what a book refused, and where: on stderr, as malformed lines are
        for problem in book.get("problems", ()):
            print(f"mm book: {problem}", file=sys.stderr)
    _warn_malformed("book", stats)
    return 0


MALFORMED_SHOWN = 5  # malformed lines named one by one on stderr; the rest are counted


def _warn_malformed(command: str, stats: CaptureStats) -> None:
    """Name on stderr the lines a capture read skipped (`file:line: reason`), so none is lost unsaid."""
    if not stats.malformed_count:
        return
    for where in stats.malformed[:MALFORMED_SHOWN]:
        print(f"mm {command}: skipped {where}", file=sys.stderr)
    more = stats.malformed_count - min(len(stats.malformed), MALFORMED_SHOWN)
    print(f"mm {command}: {stats.malformed_count} malformed line(s) skipped"
          + (f", {more} more not shown" if more else ""), file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from mm.report_compare import compare_reports

    if args.report_command == "latency":
        from processes.latency_fit import run_latency_fit

        return run_latency_fit(args.journals, as_json=args.json)
    reports = []
    for path in (args.a, args.b):
        try:
            reports.append(json.loads(path.read_text()))
        except OSError as e:
            raise UsageError(f"{path}: cannot read: {e.strerror}") from None
        except ValueError as e:
            raise UsageError(f"{path}: not a JSON report: {e}") from None
    print(compare_reports(reports[0], reports[1], names=(args.a.name, args.b.name)))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from processes.latency_bench import run_latency_bench

    if args.events < 100:
        raise UsageError(f"--events must be >= 100, was {args.events}")
    return run_latency_bench(_config(args.config), events=args.events, rate_hz=args.rate, pin=args.pin,
                             as_json=args.json)


def cmd_venue(args: argparse.Namespace) -> int:
    from processes.venue_market import run_venue

    return run_venue(args)


def cmd_capture(args: argparse.Namespace) -> int:
    from processes.capture_writer import run_capture

    return run_capture(args)


def cmd_keys(args: argparse.Namespace) -> int:
    from processes.keys_cli import run_keys

    return run_keys(args)


COMMANDS: dict[str, Any] = {"venue": cmd_venue, "capture": cmd_capture, "keys": cmd_keys, "run": cmd_run, "replay": cmd_replay, "console": cmd_console, "book": cmd_book, "bench": cmd_bench,
                             "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    try:
        report = getattr(args, "report", None)
        if isinstance(report, Path):  # found out before a long run, not after it
            try:
                report.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(f"--report {report}: cannot create its folder: {e.strerror}") from None
        return COMMANDS[args.command](args)
    except (ConfigError, UsageError) as e:
        print(f"mm {args.command}: {e}", file=sys.stderr)
        return 2
    except MMError as e:
        print(f"mm {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
