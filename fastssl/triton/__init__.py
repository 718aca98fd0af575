"""Triton kernels and their launchers. Imported lazily, by the ops that use them: ``import fastssl``
never imports Triton."""
