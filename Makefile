# Thin aliases: ./dev does the work (and installs what it needs).
.PHONY: run test lint bench schemas
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
