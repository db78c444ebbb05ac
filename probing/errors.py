"""The one mark of a user-facing error: bad input or a missing resource, said in one line.

Every such error of the project (a malformed treebank line, a missing model package, a cache that
is not complete, a model whose attention the pipeline cannot read) also derives from
:class:`ProbingError`, beside its builtin type. The runner prints its message alone and exits
non-zero instead of a traceback: the message names the file, line or setting, and what to do.
"""


class ProbingError(Exception):
    """Bad input, or what a run needs is missing; ``str(error)`` says what and where in one line."""
