"""Training a colorizer (the train stage): augmentation, cached features of frozen encoders,
choosing the decoding on val (selection, shrink_choice), resuming, several processes (distributed)."""
