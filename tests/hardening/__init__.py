"""Hardening: faults, hostile answers, fuzzing and properties, secrets, concurrency (issue #7)."""
