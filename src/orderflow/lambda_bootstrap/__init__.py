"""Runs one function in a process of its own, laid out as Lambda lays it out.

``bootstrap.py`` uses only the standard library, so it runs under any interpreter
(the runtime's own, with the built function and layer alone on the path).
"""
