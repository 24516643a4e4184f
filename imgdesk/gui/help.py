"""The Help menu's pages: a short guide to the window, and every keyboard shortcut.

The guide is the README's "Using it" told in a few paragraphs, inside the window: a frozen
build ships no README, and a shop owner should not need a browser to learn the flow. The
shortcuts are read from the actions themselves, so the list never drifts from what works.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

GUIDE_HTML = """
<h2>How imgdesk works</h2>
<p>imgdesk takes a spreadsheet (CSV) of products whose pictures live at web addresses,
downloads every picture, compresses it, keeps it on this computer, and gives you the same
spreadsheet back with the addresses of the compressed pictures.</p>

<h3>1. Load a CSV</h3>
<p>Drop one or more CSV files anywhere on the window, or use <b>File &rarr; Open</b>. Each
needs the columns <b>S. No.</b>, <b>Product Name</b> and <b>Input Image Urls</b> (one or more
addresses per product, separated by commas). Other columns are kept as they are. A file that
cannot be used is refused with the problem and its line; rows with problems are listed, and
you choose whether to go on with the others.</p>

<h3>2. Watch it work</h3>
<p>Each file becomes a <i>request</i> in the list at the top, with its state, progress and
counts. Select one to see its pictures below: state, size before and after, what was saved,
and why a picture failed. The preview on the right compares the original with the result.
<b>Pause</b> stops new pictures from starting; running ones finish.</p>

<h3>3. Fix what failed</h3>
<p>A request that finished with some failures says so ("Finished &mdash; 3 failed"). Point at
a message to read it whole. <b>Retry Failures</b> tries every failed picture of the request
again, <b>Retry Selected</b> the ones you selected; double-click a failed picture to retry
just that one. <b>Cancel</b> stops a request; its remaining pictures can be retried later.</p>

<h3>4. Get the result</h3>
<p>When a request finishes, its output CSV is written into its folder. <b>Export CSV</b>
writes it wherever you like, at any time (a request still running exports what is done).
<b>Open Folder</b> shows the compressed pictures.</p>

<h3>Settings and more</h3>
<p><b>Settings</b> holds the quality, the download limits, the data folder, the public web
address of your pictures (for output addresses on your own site or CDN) and the webhook that
tells another system when a request is done. <b>View &rarr; Dashboard</b> has figures per
request and where errors come from. The <b>Log</b> at the bottom records every step.</p>

<p>From a terminal, <code>imgdesk process products.csv</code> does the same work without the
window, and <code>imgdesk products.csv</code> hands the file to the window already open.</p>
"""


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(keys, what they do) for every action that has a shortcut, in the user's words."""
    rows = []
    for action in actions:
        keys = [s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()]
        keys = [key for key in keys if key]
        if keys:
            rows.append((" or ".join(keys), action.text().replace("&", "").rstrip("\u2026")))
    return rows


def _page(parent: QWidget | None, title: str, html: str, name: str) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setObjectName(name)
    text = QTextBrowser()
    text.setObjectName("text")
    text.setOpenExternalLinks(True)
    text.setHtml(html)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(text)
    layout.addWidget(buttons)
    dialog.resize(620, 560)
    return dialog


def guide_dialog(parent: QWidget | None) -> QDialog:
    """The guide, to open with :func:`imgdesk.gui.widgets.open_dialog`."""
    return _page(parent, "imgdesk guide", GUIDE_HTML, "guide")


def shortcuts_dialog(parent: QWidget | None, actions: Iterable[QAction]) -> QDialog:
    """Every keyboard shortcut, to open with :func:`~imgdesk.gui.widgets.open_dialog`."""
    rows = "".join(
        f"<tr><td style='padding-right: 24px'><b>{escape(keys)}</b></td>"
        f"<td>{escape(what)}</td></tr>"
        for keys, what in shortcut_rows(actions)
    )
    html = f"<h3>Keyboard shortcuts</h3><table cellspacing='4'>{rows}</table>"
    dialog = _page(parent, "imgdesk keyboard shortcuts", html, "shortcuts")
    dialog.resize(460, 480)
    return dialog
