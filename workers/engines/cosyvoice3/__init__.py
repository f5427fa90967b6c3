"""CosyVoice3: speech-token LM, flow-matching decoder and causal HiFT vocoder (see engine.py)."""
