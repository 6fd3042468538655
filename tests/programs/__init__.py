"""Tiny stand-in programs the tests start to check their own harness (a process that misbehaves)."""
