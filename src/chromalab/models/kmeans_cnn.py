"""Per-pixel palette classifier of seed 000 (Ye & Liu, "Image Colorization Using Convolutional Neural
Network"): k-means colours + a CNN that picks one of them for every pixel.

The seed: the training colours are clustered with k-means (k = 12, 24, 32) and the network, trained
with softmax + cross-entropy on CIFAR-10 (32x32), predicts each pixel's palette index. The final
network (the seed's figure 13, 450,752 parameters for k = 32) keeps the full 32x32 resolution
throughout: five 3x3 'same' convolutions with 64, 128, 128, 128, 64 filters, then three Keras Dense
layers with 64, 32 and k units applied to the (32, 32, C) feature map, softmax on the last. Its
preliminary model (figure 8) had two 5x5 convolutions with 64 filters and Dense 32 -> k = 4.

What was adapted and why:
- A Keras Dense layer on a (H, W, C) tensor acts on the last axis only, i.e. it is a 1x1
  convolution; the three Dense layers are written as such, so any H and W work (`size_multiple` 1:
  nothing is ever downsampled).
- The last layer has `out_channels` units and no softmax: the `palette` representation (the k-means
  palette) applies the softmax and the cross-entropy. The same network can therefore also regress
  ab or RGB directly; that is a chromalab extension, not the seed's.
- ReLU after every layer but the last (the seed names no activation; ReLU is the usual choice for
  such a stack). No normalisation layers, as in the seed; weights start as Keras' defaults (Glorot
  uniform, zero biases), the seed's framework, which on two real photos trained faster and more
  evenly than PyTorch's defaults.
- Knobs: `channels` (c: the convolutions have c, 2c, 2c, 2c, c filters; the seed's 64),
  `dense_channels` (d: the hidden Dense layers have 2d and d units; the seed's 32) and `kernel_size`
  (the seed's final 3; its preliminary model used 5). The defaults are the seed's network: few
  parameters, but every layer runs at full resolution, so at 64 px a training step costs about 17
  times the U-Net profile's (base_channels 24) on a CPU; `channels: 16` costs about as much as that
  profile, `channels: 32` about 3.5 times.
- The receptive field is only 11 px at kernel_size 3 (21 px at 5): the network colours pixels from
  local texture and brightness, not from what the object is, consistent with the rough, noisy
  results the seed reports on mixed classes.

Size (measured; k = 32 outputs): 450,752 parameters at the defaults, exactly the seed's figure 13;
channels 32: 116,384; channels 16: 32,144; kernel_size 5 at the defaults: 1,238,208.
"""

from torch import nn

from chromalab.models.registry import register_model


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


@register_model("kmeans_cnn")
class KMeansCNN(nn.Module):
    size_multiple = 1

    def __init__(self, in_channels=1, out_channels=32, channels=64, dense_channels=32, kernel_size=3):
        super().__init__()
        _positive_int("channels", channels)
        _positive_int("dense_channels", dense_channels)
        _positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding keeps the size), got {kernel_size}")
        c, d = channels, dense_channels
        widths = [in_channels, c, 2 * c, 2 * c, 2 * c, c]
        layers = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2), nn.ReLU(inplace=True)]
        # The seed's Dense layers, per pixel.
        layers += [
            nn.Conv2d(c, 2 * d, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * d, d, 1), nn.ReLU(inplace=True),
            nn.Conv2d(d, out_channels, 1),  # raw logits (or values): the representation applies its activation
        ]
        self.layers = nn.Sequential(*layers)
        for m in self.layers:
            if isinstance(m, nn.Conv2d):  # Keras' defaults, the seed's framework
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.layers(x)
