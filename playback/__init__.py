"""Audio engine: decoded media to the output device, on the exact sample of its time.

Public entry points: `playback.engine.AudioEngine`, `playback.prepared.Prepared`,
`playback.tts.render_speech`, `playback.chime.chime_pcm`, `playback.monitor.LevelMonitor`,
`playback.selftest.test_tone`. See docs/AUDIO.md.
"""
