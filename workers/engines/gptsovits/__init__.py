"""GPT-SoVITS: text-to-semantic GPT and SoVITS VITS decoder (see engine.py)."""
