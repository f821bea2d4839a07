"""The ``skals`` command line: ``skals demo | fit | predict | tune``.

A thin layer over the library, in three parts: the parser (``_parser``,
which imports nothing heavy, so ``skals --help`` is quick), the commands
(``_commands``: read the user's files, build the pipeline from the options,
call skals) and what is printed (``_report``). What a Python user also needs
lives in the library: model files in :mod:`skals.io` (:func:`skals.save`,
:func:`skals.load`), the challenge's answers in
:func:`skals.io.recommend_sessions`, the reveal-the-first-n protocol in
:func:`skals.model_selection.reveal_first_n`. Everything is reachable from
Python as :func:`main`.
"""

from ._parser import main

__all__ = ["main"]
