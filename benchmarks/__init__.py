"""Benchmarks of grestws against plain websockets and python-socketio.

``python -m benchmarks.run`` (or ``nox -s bench``) runs them; docs/performance.md explains
what each shape measures and how to read the results.
"""
