# Thin aliases: ./dev does the work (and installs what it needs).
.PHONY: run test lint bench schemas lock
run:
	./dev run
test:
	./dev test
lint:
	./dev lint
bench:
	./dev bench
schemas:
	./dev test -q tests/contract && .venv/bin/orderflow schemas
# Both locks, from the ranges they answer to (hashes of every wheel, for every platform):
# the layer's from services/common/requirements.txt (Python 3.13, its runtime), and the
# development environment's (./dev installs it) from pyproject.toml with the dev extras
# (Python 3.11 and newer). Pins that still satisfy the ranges are kept; to move them all
# to the newest, delete the lock files first. uv reports on stderr; the locks it also prints
# to stdout are in the files. The dev lock keeps extras (boto3-stubs[...]==...): without
# them, pip's --require-hashes takes a dependency's extras for an unpinned requirement.
UV_COMPILE = pip compile --no-python-downloads --universal --generate-hashes --index-url https://pypi.org/simple --custom-compile-command "make lock"
lock:
	.venv/bin/python -m pip install --quiet uv
	cd services/common && ../../.venv/bin/uv $(UV_COMPILE) requirements.txt --python-version 3.13 -o requirements.lock >/dev/null
	.venv/bin/uv $(UV_COMPILE) pyproject.toml --extra dev --no-strip-extras --python-version 3.11 -o requirements-dev.lock >/dev/null
