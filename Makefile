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
# The layer's lock (hashes of every wheel, for every platform) from services/common/requirements.txt.
lock:
	.venv/bin/python -m pip install --quiet uv
	cd services/common && ../../.venv/bin/uv pip compile requirements.txt --universal --python-version 3.13 \
		--generate-hashes --index-url https://pypi.org/simple --custom-compile-command "make lock" -o requirements.lock
