# The two commands of a newcomer (see README.md):
#   make demo   sets up .venv and runs the end-to-end demo on an embedded node
#   make test   sets up .venv and runs the whole test suite (what .ci/run calls)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench bench-access bench-consortium bench-he bench-sandbox clean

setup:
	@scripts/setup.sh

demo: setup
	@$(PY) -m client.demo $(DEMO_ARGS)

# The tests also start etcd clusters (the consortium's ordering service): installed from
# Debian's etcd-server package when missing. The demo runs on an embedded node and needs none.
test: setup
	@bash scripts/setup-etcd.sh
	@scripts/run-tests.sh

bench: setup
	@$(PY) -m bench.ledger_bench $(BENCH_ARGS)
bench-access: setup ; @$(PY) -m bench.access_bench $(BENCH_ARGS)
bench-consortium: setup ; @$(PY) -m bench.consortium_bench $(BENCH_ARGS)
bench-he: setup ; @$(PY) -m bench.he_bench $(BENCH_ARGS)
bench-sandbox: setup ; @$(PY) -m bench.sandbox_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
