"""A headless Chromium to look at an HTML page: a screenshot, and measurements of its layout
(clipped tables, wrapping cells) that a test can assert on.

Debian: ``apt-get install chromium``; elsewhere set ``$LFXBENCH_CHROMIUM`` to the binary.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from lfxbench.errors import LfxbenchError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENVIRONMENT_VARIABLE = "LFXBENCH_CHROMIUM"
TIMEOUT_SECONDS = 120
# Chromium stops painting beyond this height (a GPU texture limit), whatever it is asked.
MAX_SCREENSHOT_HEIGHT = 16384
MARKER = "lfxbench-layout"
NO_PAGE_SCROLLBAR = "<style>html{overflow-y:hidden}</style>"


def find_chromium() -> str:
    """The path of a headless-capable Chromium: ``$LFXBENCH_CHROMIUM`` if set, else the
    first of `CANDIDATES` on the PATH."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise LfxbenchError(
                f"${ENVIRONMENT_VARIABLE} is {chosen!r}, which is not an executable file "
                "nor a command on the PATH"
            )
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise LfxbenchError(
        f"no headless Chromium found (looked for ${ENVIRONMENT_VARIABLE} and "
        f"{', '.join(CANDIDATES)} on the PATH); install one (Debian: `apt-get install "
        f"chromium`) or set ${ENVIRONMENT_VARIABLE} to its path"
    )


def _run(arguments: list[str], url: str) -> subprocess.CompletedProcess[str]:
    binary = find_chromium()
    # A profile of its own: concurrent runs (test workers) would otherwise fight over the
    # user's profile lock, and nothing is left behind.
    with tempfile.TemporaryDirectory(prefix="lfxbench-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",  # as root (containers, CI) Chromium refuses to start without it
            "--disable-gpu",
            "--disable-dev-shm-usage",  # /dev/shm of containers is often tiny
            "--no-first-run",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            *arguments,
            url,
        ]
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise LfxbenchError(
                f"{binary} did not finish within {TIMEOUT_SECONDS} s on {url}"
            ) from None
        except OSError as error:
            raise LfxbenchError(f"cannot start {binary}: {error.strerror}") from None
    if completed.returncode != 0:
        raise LfxbenchError(
            f"{binary} failed (exit {completed.returncode}) on {url}: {_tail(completed.stderr)}"
        )
    return completed


def _tail(text: str, lines: int = 5) -> str:
    # Chromium logs dbus complaints on machines without a session bus; they explain nothing.
    useful = [line for line in text.splitlines() if line.strip() and "dbus" not in line]
    return " | ".join(useful[-lines:]) or "(no message)"


def screenshot(page: Path, out: Path, width: int = 1400, height: int | None = None) -> Path:
    """A PNG of ``page`` in a window ``width`` wide: ``height`` tall, or (None) as tall as
    the page, measured first with `layout`."""
    page = Path(page).resolve()
    if not page.is_file():
        raise LfxbenchError(f"no page to screenshot at {page}")
    if height is None:
        # Measured as the screenshot shows it: a window as tall as the page has no vertical
        # scroll bar, and without one the figures scale wider, so taller. (--hide-scrollbars
        # would hide the tables' horizontal ones as well, and shorten the page.)
        measured = _measure(page, width, 900, NO_PAGE_SCROLLBAR)
        height = min(int(measured["scroll_height"]), MAX_SCREENSHOT_HEIGHT)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written to a scratch name and moved: a failed run must not leave an old image behind
    # that passes for the new one.
    scratch = out.with_name(f".{out.name}.tmp.png")
    scratch.unlink(missing_ok=True)
    completed = _run(
        [
            f"--screenshot={scratch}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=5000",
        ],
        page.as_uri(),
    )
    if not scratch.is_file():
        raise LfxbenchError(f"Chromium wrote no screenshot of {page}: {_tail(completed.stderr)}")
    scratch.replace(out)
    return out


# Measures after `load` (figures decoded) and leaves the result in the DOM, which
# --dump-dom prints. A table inside a horizontal scroll container may be wider than the
# container (it scrolls); the container itself must stay in the viewport. Wrapping is a
# text node whose line boxes, grouped by their block, span more than one line.
MEASURE = r"""
<script>
window.addEventListener('load', function () {
  var root = document.documentElement, vw = root.clientWidth;
  var box = function (r) {
    return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height};
  };
  var name = function (e) {
    var classes = typeof e.className === 'string' ? e.className.trim() : '';
    return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
      (classes ? '.' + classes.split(/\s+/).join('.') : '');
  };
  var lines = function (rects) {
    rects.sort(function (a, b) { return a.top - b.top; });
    var n = 0, bottom = -Infinity;
    rects.forEach(function (r) {
      if (r.width === 0 && r.height === 0) return;
      if (r.top >= bottom - 1) { n += 1; bottom = r.bottom; }
      else bottom = Math.max(bottom, r.bottom);
    });
    return n;
  };
  var out = {viewport_width: vw, viewport_height: innerHeight,
             scroll_width: root.scrollWidth, scroll_height: root.scrollHeight,
             tables: [], wrapped_cells: [], clipped_tables: []};
  document.querySelectorAll('table').forEach(function (table, index) {
    var rect = table.getBoundingClientRect(), style = getComputedStyle(table);
    var reasons = [], scroller = null, outer = rect;
    var visible = rect.width > 0 && rect.height > 0 && style.visibility !== 'hidden';
    if (!visible) reasons.push('not visible');
    for (var e = table.parentElement; e && e !== root; e = e.parentElement) {
      var ox = getComputedStyle(e).overflowX, er = e.getBoundingClientRect();
      if (ox === 'auto' || ox === 'scroll') {
        if (!scroller) { scroller = e; outer = er; }
      } else if ((ox === 'hidden' || ox === 'clip') &&
                 (outer.right > er.right + 1 || outer.left < er.left - 1)) {
        reasons.push('cut off by ' + name(e) + ' (overflow: ' + ox + ')');
      }
    }
    if (outer.right > vw + 1 || outer.left < -1) {
      reasons.push((scroller ? 'its scroll container' : 'it') + ' extends past the viewport');
    }
    var wrapped = 0, overflowing = 0;
    table.querySelectorAll('td').forEach(function (cell) {
      if (cell.scrollWidth > cell.clientWidth + 1) overflowing += 1;
      var blocks = new Map();
      var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (var node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.textContent.trim()) continue;
        var block = node.parentElement;
        while (block !== cell && getComputedStyle(block).display === 'inline') {
          block = block.parentElement;
        }
        var range = document.createRange();
        range.selectNodeContents(node);
        var rects = Array.prototype.slice.call(range.getClientRects());
        blocks.set(block, (blocks.get(block) || []).concat(rects));
      }
      var most = 0;
      blocks.forEach(function (rects) { most = Math.max(most, lines(rects)); });
      if (most > 1) {
        wrapped += 1;
        if (out.wrapped_cells.length < 50) {
          out.wrapped_cells.push({table: index, text: cell.textContent.trim(), lines: most});
        }
      }
    });
    if (overflowing) reasons.push(overflowing + ' cells whose content overflows them');
    var label = table.getAttribute('aria-label') ||
      (table.caption ? table.caption.textContent.trim() : '');
    out.tables.push({
      index: index, label: label, box: box(rect), visible: visible,
      scroll_container: scroller ? box(scroller.getBoundingClientRect()) : null,
      scrolls: scroller ? scroller.scrollWidth > scroller.clientWidth + 1 : false,
      clipped: reasons.length > 0, reasons: reasons, wrapped_cells: wrapped,
      n_cells: table.querySelectorAll('td').length
    });
    if (reasons.length) out.clipped_tables.push(index);
  });
  var pre = document.createElement('pre');
  pre.id = 'MARKER';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
""".replace("MARKER", MARKER)


def _scratch_copy(text: str, folder: Path | None) -> Path:
    # Beside the page where it can, so that relative links (images, styles) still resolve.
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", suffix=".html", prefix=".layout-", dir=folder, delete=False
    ) as copy:
        copy.write(text)
    return Path(copy.name)


def dump_dom(page: Path, width: int = 1400, height: int = 900, script: str = "") -> str:
    """The DOM of ``page`` after it loaded in a window ``width`` × ``height`` and its
    scripts ran, with ``script`` (HTML, e.g. a ``<script>`` element) appended to a copy of
    the page first; the page itself is left as it is."""
    page = Path(page).resolve()
    try:
        text = page.read_text(encoding="utf-8")
    except OSError as error:
        raise LfxbenchError(f"cannot read the page {page}: {error.strerror}") from None
    at = text.lower().rfind("</body>")
    extended = text[:at] + script + text[at:] if at >= 0 else text + script
    try:
        copy = _scratch_copy(extended, page.parent)
    except OSError:  # a read-only folder: a self-contained page loads from anywhere
        copy = _scratch_copy(extended, None)
    try:
        completed = _run(
            [
                "--dump-dom",
                f"--window-size={width},{height}",
                # Lets the page load and its scripts run before the DOM is dumped.
                "--virtual-time-budget=10000",
            ],
            copy.as_uri(),
        )
    finally:
        copy.unlink(missing_ok=True)
    return completed.stdout


def layout(page: Path, width: int = 1400, height: int = 900) -> dict[str, Any]:
    """How ``page`` lays out in a window ``width`` × ``height``.

    Returns ``viewport_width`` (without a scroll bar), ``scroll_width`` and
    ``scroll_height`` of the document; ``tables``: per table its ``label`` (aria-label or
    caption), ``box`` (x, y, width, height in page pixels), ``visible``,
    ``scroll_container`` (the box of its horizontal scroll container, or None), ``scrolls``
    (whether that container has to scroll), ``clipped`` and its ``reasons``, and
    ``wrapped_cells`` (how many of its cells wrap a line); ``wrapped_cells``: up to 50 of
    those cells (table index, text, lines); ``clipped_tables``: the indices of clipped ones.
    """
    return _measure(page, width, height, "")


def _measure(page: Path, width: int, height: int, style: str) -> dict[str, Any]:
    dom = dump_dom(page, width, height, style + MEASURE)
    found = re.search(rf'<pre id="{MARKER}">(.*?)</pre>', dom, re.DOTALL)
    if found is None:
        raise LfxbenchError(f"the layout script did not report on {page} (did the page load?)")
    return json.loads(html.unescape(found[1]))
