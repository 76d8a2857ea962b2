"""Provider adapters by capability (vad, stt, brain, tts), chosen by name in the registry."""
