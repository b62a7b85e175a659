"""`spikeflops dashboard [HTML_DIR] [--publish]`: asv's dashboard of this project, offline."""

from __future__ import annotations

import sys
from pathlib import Path

from ..dashboard.offline import VENDOR, make_offline


def add_parser(subparsers) -> None:
    d = subparsers.add_parser("dashboard", help="make asv's published dashboard render without internet",
                              description="Copy the JavaScript and CSS that asv's dashboard loads from CDNs "
                                          "beside it and point the pages at the copies; with --publish, "
                                          "run asv publish first.")
    d.add_argument("html_dir", nargs="?", default="results/html", help="asv publish's output (default: results/html)")
    d.add_argument("--publish", action="store_true",
                   help="run asv publish first, on a copy of the results where every run's interpreter is its "
                        "major.minor version (asv splits a series between --python=same and virtualenv runs "
                        "otherwise), leaving out benchmarks with no value on any machine")
    d.add_argument("--config", default="asv.conf.json", help="asv configuration for --publish (default: asv.conf.json)")
    d.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args) -> int:
    if args.publish:
        from ..dashboard.publish import publish

        publish(Path(args.config), Path(args.html_dir))
        print(f"{args.html_dir}: published; its pages load their libraries from {VENDOR}/")
        return 0
    pages, unknown = make_offline(Path(args.html_dir))
    for url in sorted(unknown):
        print(f"spikeflops dashboard: left as is (no local copy): {url}", file=sys.stderr)
    print(f"{args.html_dir}: {pages} page(s) now load their libraries from {VENDOR}/")
    return 0
