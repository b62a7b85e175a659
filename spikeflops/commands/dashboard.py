"""`spikeflops dashboard [HTML_DIR] [--publish]`: asv's dashboard of this project, offline."""

from __future__ import annotations

import sys
from pathlib import Path

from ..dashboard.graphs import fix_graph_page
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
    d.add_argument("--serve", action="store_true",
                   help="then serve the dashboard on this machine (http://127.0.0.1:PORT/) until Ctrl-C: asv's "
                        "pages fetch their data, which a browser refuses for a page opened from disk")
    d.add_argument("--port", type=port_number, default=8080, help="the port for --serve (default 8080; 0: any free one)")
    d.set_defaults(func=cmd_dashboard)


def port_number(text: str) -> int:
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def serve(html_dir: Path, port: int) -> None:
    """Serve ``html_dir`` on the loopback interface until interrupted; prints the address first."""
    import functools
    import http.server

    from workloads.errors import SpikeflopsError

    if not (html_dir / "index.html").is_file():
        raise SpikeflopsError(f"{html_dir}: no dashboard here (spikeflops dashboard --publish makes one)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):            # a line per request would bury the address
            pass

    handler = functools.partial(Quiet, directory=str(html_dir))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise SpikeflopsError(f"cannot serve on port {port}: {exc.strerror or exc}") from None
    print(f"serving {html_dir} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def cmd_dashboard(args) -> int:
    if args.publish:
        from ..dashboard.publish import publish

        publish(Path(args.config), Path(args.html_dir))
        print(f"{args.html_dir}: published; its pages load their libraries from {VENDOR}/; open it with "
              f"`spikeflops dashboard {args.html_dir} --serve` (a page opened from disk cannot fetch its data)")
    elif not args.serve:
        pages, unknown = make_offline(Path(args.html_dir))
        for url in sorted(unknown):
            print(f"spikeflops dashboard: left as is (no local copy): {url}", file=sys.stderr)
        for missed in fix_graph_page(Path(args.html_dir)):
            print(f"spikeflops dashboard: {missed}", file=sys.stderr)
        print(f"{args.html_dir}: {pages} page(s) now load their libraries from {VENDOR}/")
    if args.serve:
        serve(Path(args.html_dir), args.port)
    return 0
