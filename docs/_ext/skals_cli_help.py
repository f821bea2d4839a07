"""``.. skals-help:: [COMMAND]``: the output of ``skals [COMMAND] --help``.

The command-line page shows the help text that the installed ``skals``
prints, captured at build time, so the page cannot drift from the parser.
"""

from __future__ import annotations

import contextlib
import io
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class SkalsHelp(SphinxDirective):
    optional_arguments = 1
    has_content = False

    def run(self):
        from skals.cli import main

        argv = [*self.arguments, "--help"]
        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal width
        try:
            with contextlib.redirect_stdout(out):
                status = main(argv)
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        if status != 0:
            raise self.error(f"`skals {' '.join(argv)}` exited with {status}")
        text = f"$ skals {' '.join(argv)}\n{out.getvalue().rstrip()}"
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("skals-help", SkalsHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
