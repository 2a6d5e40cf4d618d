"""Loaded by .ci/schemathesis.sh (SCHEMATHESIS_HOOKS) into schemathesis.

Why: CPython 3.11 before 3.11.9 can raise `SystemError: AST constructor recursion depth
mismatch` from `ast.parse` when it runs deep in the stack. Hypothesis calls `ast.parse` only to
*describe* a lambda (the text of a filter, for messages), and schemathesis's generators run deep
enough to hit the bug, which turns a test case into a "Runtime Error". A description is
cosmetic, so on that error it falls back to Hypothesis's own "<unknown>" text. Nothing that is
generated or checked changes.
"""

from hypothesis.internal import lambda_sources

_describe = lambda_sources._lambda_description


def _lambda_description(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _lambda_description
