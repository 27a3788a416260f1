"""A colorizer: a network of models/ with the colour representation it predicts (representations)
and the confidence read from it, saved and loaded as a checkpoint, run on a device, and used to
colorize photos of any size (colorize)."""
