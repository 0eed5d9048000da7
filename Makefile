# Set-up and everyday commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-zmq test-slow bench bench-hftbacktest lint supervise stop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/mm run --duration $${DURATION:-30} --report report.json

test: install
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable -m "not slow" -n 2 --dist loadfile tests bench

# the fault, restart and replay-determinism tests again over the ZeroMQ critical path (the default is shm)
test-zmq: install
	MM_TEST_CRITICAL_PATH=zmq $(BIN)/pytest -q -p no:cacheprovider --benchmark-disable -m "not slow" -n 2 --dist loadfile \
		tests/integration/test_pipeline_sim.py tests/integration/test_supervisord.py tests/replay/test_engines.py \
		tests/replay/test_replay_pipeline.py tests/integration/test_pipeline_live.py

test-slow: install
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable -m slow tests bench
	MM_FUZZ_FULL=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 tests/property

bench: install
	$(BIN)/pytest -q -p no:cacheprovider bench --benchmark-columns=min,median,mean,max,rounds --benchmark-sort=name

# hftbacktest 2.4.4 (throwaway venv in build/, not a project dependency) vs `mm replay --max`
bench-hftbacktest: install
	$(BIN)/python bench/hftbacktest_compare.py --mm --processes $(FILES)

lint: install
	$(BIN)/ruff check mm processes ipc tests bench

supervise: install
	mkdir -p run/logs
	$(BIN)/supervisord -c supervisor.conf
	@echo "supervisord started: $(BIN)/supervisorctl -c supervisor.conf status"

stop:
	-$(BIN)/supervisorctl -c supervisor.conf shutdown

clean:
	rm -rf $(VENV) build *.egg-info report.json
