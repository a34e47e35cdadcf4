"""Signed erasure certificates: model, signing, PDF and offline verification."""
