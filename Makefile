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
# Every lock, from the ranges it answers to (hashes of every wheel, for every platform):
#   services/common/requirements.lock  the layer's, from services/common/requirements.txt
#                                      (Python 3.13, its runtime);
#   requirements-dev.lock              what ./dev test installs into .venv: pyproject.toml with
#                                      the dev extras (Python 3.11 and newer), constrained to
#                                      the layer's pins, so the tests run the versions that ship;
#   requirements-run.lock              what ./dev run installs: the runtime dependencies and the
#                                      local extra, constrained to the dev lock's pins (a subset);
#   services/migrator/requirements.lock  Alembic in the migration function (the dev lock's pins);
#   tools/sam.lock, tools/checkov.lock the tools with caps of their own, each in .venv-tools/NAME.
# Pins that still satisfy the ranges are kept; to move them all to the newest, delete the
# lock files first. uv reports on stderr; the locks it also prints to stdout are in the
# files. The dev lock keeps extras (moto[server,...]==...): without them, pip's
# --require-hashes takes a dependency's extras for an unpinned requirement.
# After adding a package to pyproject.toml (or requirements.txt), `make lock` is the whole
# regeneration; it needs .venv (./dev lint makes it) and PyPI.
UV_COMPILE = pip compile --no-python-downloads --universal --generate-hashes --index-url https://pypi.org/simple --custom-compile-command "make lock"
lock:
	.venv/bin/python -m pip install --quiet uv
	cd services/common && ../../.venv/bin/uv $(UV_COMPILE) requirements.txt --python-version 3.13 -o requirements.lock >/dev/null
	.venv/bin/uv $(UV_COMPILE) pyproject.toml --extra dev --no-strip-extras --python-version 3.11 \
		--constraint services/common/requirements.lock -o requirements-dev.lock >/dev/null
	.venv/bin/uv $(UV_COMPILE) pyproject.toml --extra local --no-strip-extras --python-version 3.11 \
		--constraint requirements-dev.lock -o requirements-run.lock >/dev/null
	cd services/migrator && ../../.venv/bin/uv $(UV_COMPILE) requirements.txt --no-deps --python-version 3.13 \
		--constraint ../../requirements-dev.lock -o requirements.lock >/dev/null
	cd tools && ../.venv/bin/uv $(UV_COMPILE) sam.txt --no-strip-extras --python-version 3.11 -o sam.lock >/dev/null
	cd tools && ../.venv/bin/uv $(UV_COMPILE) checkov.txt --no-strip-extras --python-version 3.11 -o checkov.lock >/dev/null
