"""vTTS."""
