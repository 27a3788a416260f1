"""Films: read and write them (container), follow motion between frames (flow), carry colour
through time (stabilise), colorize a film (film), score a colorized film (score), and make a test
clip whose truth is known (clip)."""

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm")  # here: the CLI lists them without loading FFmpeg
