"""Bundled configuration files (TOML), importable so an installed vTTS finds its default."""
