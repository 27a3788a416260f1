"""How colorizations are scored: metrics, their intervals (uncertainty), the ImageNet judge, and the
stages that score a model on held-out photos: evaluate, neutral (colour painted on grey)."""
