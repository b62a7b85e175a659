"""Make asv's published pages load their JavaScript and CSS from copies beside them, not from CDNs.

asv's pages load jQuery, flot, bootstrap and friends from CDNs; on an offline GPU runner or CI
machine the page shows only an error. This copies the same libraries (shipped in
vendor/, MIT-licensed) next to the pages and points every tag at the copies.
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

from workloads.errors import SpikeflopsError

VENDOR = "vendor"
# CDN address asv 0.6 uses -> file in vendor/
CDN_FILES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": "jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": "jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": "jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "css/bootstrap.min.css",
}
_TAG = re.compile(r"<(script|link)\b[^>]*?(?:src|href)=\"(https://[^\"]+)\"[^>]*>", re.S)


def make_offline(html_dir: Path) -> tuple[int, set[str]]:
    """Rewrite every page of ``html_dir``; returns the pages changed and CDN addresses with no local copy."""
    if not (html_dir / "index.html").is_file():
        raise SpikeflopsError(f"{html_dir}: no index.html here; run `asv publish` first")
    source = resources.files(__package__) / VENDOR
    target = html_dir / VENDOR
    with resources.as_file(source) as src:
        shutil.copytree(src, target, dirs_exist_ok=True)
    unknown: set[str] = set()
    changed = 0
    for page in html_dir.glob("*.html"):
        text = page.read_text()
        new = _TAG.sub(lambda m: _localise(m, unknown), text)
        if new != text:
            page.write_text(new)
            changed += 1
    return changed, unknown


def _localise(match: re.Match, unknown: set[str]) -> str:
    tag, url = match.group(0), match.group(2)
    local = CDN_FILES.get(url)
    if local is None:
        if match.group(1) == "script" or 'rel="stylesheet"' in tag:
            unknown.add(url)
        return tag
    tag = tag.replace(url, f"{VENDOR}/{local}")
    # the copies are not byte-identical to the CDN's minified files: drop the subresource-integrity pins
    return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)
