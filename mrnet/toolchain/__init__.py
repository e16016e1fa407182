"""The offline toolchain: synthetic phantoms, MRNet's dataset layout, training, evaluation, model cards,
converters, publishing, figures, benchmarks and the app's sample patients. It builds on the runtime
(`mrnet`); the runtime never imports it (an import-linter contract in pyproject.toml checks that)."""
