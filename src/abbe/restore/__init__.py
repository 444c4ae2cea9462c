"""Restoration: classical baselines now; learned denoising and super-resolution join here."""
