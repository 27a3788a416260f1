"""Zhang, Isola & Efros 2016, "Colorful Image Colorization" (ECCV 2016): the network of
richzhang/colorization's `eccv16` model, cited by seeds 000, 001 and 003.

The paper: a VGG-style stack of eight blocks of 3x3 convolutions with ReLU, each block but the last
ending in BatchNorm. conv1 (2 x 64) and conv2 (2 x 128) and conv3 (3 x 256) each end in a stride-2
convolution (1/8 of the input); conv4 (3 x 512) keeps that resolution; conv5 and conv6 (3 x 512
each) are dilated by 2 to widen the receptive field without losing resolution; conv7 (3 x 512);
conv8 upsamples with a 4x4 stride-2 transposed convolution to 256 channels (1/4 of the input),
then two 3x3 convolutions of 256 and a 1x1 convolution to 313 logits, one per in-gamut ab bin
(grid 10). Training: multinomial cross-entropy with class rebalancing; decoding: the annealed mean
(temperature 0.38) of the softmax; about 32M parameters.

What chromalab chose and why:
- The layers and their order are the reference implementation's, BatchNorm included (after conv1
  to conv7; conv8 feeds the logits directly). Convolutions keep their biases as there.
- The ReLU convolutions start with He (Kaiming) initialisation, which keeps the signal's scale
  through the three unnormalised convolutions of each block (the reference releases trained weights
  and no initialisation). With PyTorch's default initialisation a fresh network's output hardly
  depended on its input, and on two real photos 30 Adam steps ended at 0.17 to 0.39 of the loss of
  predicting the mean colour, against 0.17 to 0.21 with He initialisation.
- The network returns raw logits (or values): the colour representation owns the softmax, the
  rebalanced cross-entropy and the annealed-mean decoding (in the reference, the softmax and a
  fixed 1x1 convolution over the 313 bin centres sit inside the network). So `out_channels` is the
  representation's: 313 bins normally, but the same network can regress ab or predict palette
  classes.
- The paper trains at 1/4 resolution by downsampling the targets; chromalab upsamples the logits
  bilinearly to the input size instead (as the reference upsamples its decoded ab by 4). Every
  representation then sees outputs at the size of its targets, as the network contract asks, and
  the loss is taken on full-resolution targets.
- `width` (float, 1.0 = the paper) multiplies every channel count, so the same architecture fits a
  CPU (0.125: 8 .. 64 channels). Inputs must be a multiple of 8 (`size_multiple`: three stride-2
  convolutions); `chromalab colorize` pads any photo to that multiple and crops back.

Size (measured; 313 outputs): 32,235,385 parameters at width 1.0 (the paper's ~32M); width 0.5:
8,082,521; width 0.25: 2,032,585; width 0.125: 514,241. On a CPU at 64 px, width 0.125 costs about a
third of the U-Net profile's training step with 2 outputs, but with 313 outputs the full-resolution
logits (and the loss over them) dominate: about 4 times that profile.
"""

from torch import nn
from torch.nn import functional as F

from chromalab.models.registry import register_model


def _block(cin, cout, n, stride=1, dilation=1):
    """n 3x3 convolutions with ReLU, the last one with `stride`, then BatchNorm."""
    layers = []
    for i in range(n):
        s = stride if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=s, padding=dilation, dilation=dilation),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.BatchNorm2d(cout))


@register_model("zhang")
class Zhang(nn.Module):
    size_multiple = 8

    def __init__(self, in_channels=1, out_channels=313, width=1.0):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")

        def c(n):
            return max(1, round(n * width))

        self.conv1 = _block(in_channels, c(64), 2, stride=2)  # 1/2
        self.conv2 = _block(c(64), c(128), 2, stride=2)  # 1/4
        self.conv3 = _block(c(128), c(256), 3, stride=2)  # 1/8
        self.conv4 = _block(c(256), c(512), 3)
        self.conv5 = _block(c(512), c(512), 3, dilation=2)
        self.conv6 = _block(c(512), c(512), 3, dilation=2)
        self.conv7 = _block(c(512), c(512), 3)
        self.conv8 = nn.Sequential(  # back to 1/4
            nn.ConvTranspose2d(c(512), c(256), 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(inplace=True),
        )
        self.out = nn.Conv2d(c(256), out_channels, 1)  # raw logits at 1/4 of the input
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not self.out:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        h = x
        for block in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5, self.conv6,
                      self.conv7, self.conv8):
            h = block(h)
        return F.interpolate(self.out(h), size=x.shape[-2:], mode="bilinear", align_corners=False)
