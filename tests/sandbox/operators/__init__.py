"""Operators that the sandbox tests run with kopf (loaded by ``kopf run``, never imported)."""
