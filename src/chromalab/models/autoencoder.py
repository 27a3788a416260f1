"""Convolutional autoencoder with encoder/decoder concatenation: seed 002 (Nihalaani, Mansharamani &
Janjua, "Image Colorization Using Autoencoders") and the conv-deconv RGB autoencoder of seed 000
(Ye & Liu).

Seed 002: an encoder of convolutions and down-sampling compresses the grey image, a decoder of
convolutions and up-sampling regenerates it in colour at the input size, and encoder and decoder
layers are concatenated "to prevent feature loss" (skip connections); Keras, L2 loss, a Kaggle
landscape dataset of paired grey and colour images. Seed 000 describes the same shape ("CNN-Encoder-
DNN") predicting R, G and B directly, trained with a pixel-wise MSE; it gave up on it for lack of
compute and published no layer table. Neither seed gives depths, widths or kernel sizes.

What chromalab chose and why:
- Each encoder level halves the resolution with a 2x2 max-pool and applies two 3x3 convolutions;
  each decoder level doubles it (nearest-neighbour up-sampling, then a 3x3 convolution),
  concatenates the encoder features of the same resolution and mixes them with two 3x3
  convolutions. Every convolution is followed by BatchNorm and ReLU; the widths double per level:
  base_channels * 2**level. This is the classic reading of "CNN and down-sampling / CNN and
  up-sampling" with concatenation, distinct from the U-Net of seed 004 (stride-2 convolutions,
  LeakyReLU, dropout, transposed convolutions).
- BatchNorm is chromalab's addition (neither seed mentions normalisation): without it this plain
  ReLU stack trained erratically from one seed to the next (on two real photos, 30 Adam steps ended
  anywhere between 0.3 and 2 times the loss of predicting the mean colour; with it, 0.15 to 0.2).
  The last layer starts at 1/100 of its usual initial weights, so a fresh network predicts nearly
  the representation's neutral output (grey ab, mid-grey RGB, uniform class probabilities) instead
  of random saturated colours.
- `depth` is the number of down/up levels; inputs must be a multiple of 2**depth (`size_multiple`),
  and `chromalab colorize` pads any photo to that multiple and crops back.
- The network ends with a 1x1 convolution and no activation: the colour representation applies its
  own. Seed 002's colour output is `representation: ab`; seed 000's RGB autoencoder is the same
  network with `representation: rgb` (three sigmoid channels, MSE on RGB).
- `base_channels` 16 and `depth` 3 keep the default small enough for a CPU; base_channels 64 with
  depth 4 is the usual full-size encoder-decoder (widths 64 .. 1024).

Size (measured; two output channels): 536,338 parameters at base_channels 16, depth 3; 134,538 at
base_channels 8; 2,141,730 at base_channels 32; 34,519,106 at base_channels 64, depth 4.
"""

import torch
from torch import nn

from chromalab.models.registry import register_model


def _conv(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _convs(cin, cout):
    return nn.Sequential(*_conv(cin, cout), *_conv(cout, cout))


class _Up(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_conv(cin, cout))
        self.mix = _convs(cout + cskip, cout)

    def forward(self, x, skip):
        return self.mix(torch.cat([self.up(x), skip], dim=1))


@register_model("autoencoder")
class Autoencoder(nn.Module):
    def __init__(self, in_channels=1, out_channels=2, base_channels=16, depth=3):
        super().__init__()
        for name, value in (("base_channels", base_channels), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        self.size_multiple = 2**depth
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.stem = _convs(in_channels, widths[0])  # full resolution
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), _convs(widths[i], widths[i + 1])) for i in range(depth))
        self.up = nn.ModuleList(_Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(widths[0], out_channels, 1)
        # A fresh network predicts nearly the representation's neutral output (grey ab, mid-grey
        # RGB, uniform class probabilities) rather than random saturated colours.
        with torch.no_grad():
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()

    def forward(self, x):
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.up:
            h = up(h, skips.pop())
        return self.out(h)
