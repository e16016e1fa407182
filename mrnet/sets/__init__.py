"""Labelled sets and what is said about them: MRNet's folder layout and its readers (cases, labels), the score
tables that weights give a set, their statistics (ROC, calibration, DeLong, McNemar, Wilson), reviewers' flags,
the sample patients and the phantom set. Not web code: the app and the toolchain both build on it."""
