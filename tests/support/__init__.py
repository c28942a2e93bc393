"""Test support: the Chainguard-compatible registry front and the real services behind it.

Kept importable without pytest installed (front.py is stdlib only) so scripts and benchmarks
can reuse the same front the test suite uses.
"""
