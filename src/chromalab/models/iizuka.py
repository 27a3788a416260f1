"""Global + local priors network of seed 001, which replicates Iizuka, Simo-Serra & Ishikawa 2016,
"Let there be Color!: Joint End-to-end Learning of Global and Local Image Priors for Automatic Image
Colorization with Simultaneous Classification" (SIGGRAPH 2016).

The paper: shared low-level features (six 3x3 convolutions: 64 s2, 128, 128 s2, 256, 256 s2, 512)
feed two branches. The mid-level branch (512, 256) keeps the spatial layout at 1/8 of the input; the
global branch (512 s2, 512, 512 s2, 512, then FC 1024 -> 512 -> 256) sees a 224x224 rescaled copy of
the image and sums it up in one vector. A fusion layer concatenates that 256-d vector to every
position of the mid-level map and mixes them (a 1x1 convolution to 256). The colorization network
(conv 128, upsample x2, conv 64, conv 64, upsample x2, conv 32, conv 2 with a sigmoid) predicts ab at
half the input size, upsampled to it. A classification head (FC 256 -> number of classes) on the 512-d
global feature is trained beside it: loss = MSE(colour) + α·CE(class) with α = 1/300. ReLU after
every layer but the output; batch normalisation; Adadelta.

The seed's deviations: 128 px images, so a reduced 4-layer low-level network (64 s2, 128, 128 s2,
256) and halved widths elsewhere; ab mapped to [0, 1], sigmoid output and MSE; Adadelta; α = 1/300
first, then 5 (found by comparing the two losses' magnitudes).

What chromalab chose and why:
- The paper's six low-level convolutions, not the seed's four: chromalab's images are small, but the
  `width` knob (a float multiplier of every channel count and FC width; 1.0 = the paper) is what
  makes the network cheap, not dropping layers (a CPU profile: 0.25).
- The global branch ends in an adaptive average pool to 1x1 instead of the paper's flatten of a
  7x7x512 map into FC 1024, so any input size works without rescaling a copy to 224 px (the paper's
  way of fixing the flatten size). At width 1.0 this is most of the difference in size: the
  paper's first FC alone has 25.7M weights; here it has 0.5M. The two extra stride-2
  convolutions are size-free: a 32 px input reaches the global branch at 4x4 and ends at 1x1.
- Inputs must be a multiple of 8 (`size_multiple`: three stride-2 convolutions in the low-level
  network); `chromalab colorize` pads any photo to that multiple and crops back.
- BatchNorm + ReLU after every convolution (the paper's layers), plain ReLU after the FC layers. A
  training batch of one small image gives the last global convolutions a single value per channel,
  from which batch statistics are undefined; there BatchNorm uses its running statistics instead of
  failing (`_BatchNorm2d`).
- The network ends with a plain convolution: the output activation belongs to the colour
  representation (`ab` with `activation: sigmoid` is the paper's and the seed's sigmoid + MSE on
  [0, 1]). The last x2 upsampling to the input size is bilinear (smooth chroma); the two inside
  the colorization network are nearest-neighbour, as in the paper.
- The classification head is built only when `num_classes` > 0. Training fills `num_classes` in
  from the data's labels (class folders) and sets 0 when there are none, so the head is absent and
  the loss is the colour loss alone. α is `models.iizuka.class_loss_weight` in params.yaml; the
  paper's 1/300 is the default (the seed needed 5 to match its summed, Frobenius, colour loss;
  chromalab's colour loss is a mean).

Size (measured; two output channels, no head): 17,008,706 parameters at width 1.0; the paper's
flatten + FC 1024 would add 25.2M more (about 42M in all). The head adds 131,328 + 257·num_classes.
Width 0.5: 4,255,266 (about the training cost of the unet profile on a CPU); width 0.25: 1,065,362
(a third of that cost).
"""

import torch
from torch import nn
from torch.nn import functional as F

from chromalab.models.registry import register_model


class _BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in training, falls back to its running statistics when the batch has a
    single value per channel (batch of 1 at 1x1), instead of raising."""

    def forward(self, x):
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                training=False, momentum=0.0, eps=self.eps)
        return super().forward(x)


def _conv(cin, cout, stride=1, kernel=3):
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        _BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


@register_model("iizuka")
class Iizuka(nn.Module):
    size_multiple = 8

    def __init__(self, in_channels=1, out_channels=2, num_classes=0, width=1.0):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a whole number >= 0, got {num_classes!r}")
        self.num_classes = num_classes

        def c(n):
            return max(1, round(n * width))

        self.low = nn.Sequential(  # 1/8 of the input
            _conv(in_channels, c(64), 2), _conv(c(64), c(128)),
            _conv(c(128), c(128), 2), _conv(c(128), c(256)),
            _conv(c(256), c(256), 2), _conv(c(256), c(512)),
        )
        self.mid = nn.Sequential(_conv(c(512), c(512)), _conv(c(512), c(256)))
        self.global_conv = nn.Sequential(
            _conv(c(512), c(512), 2), _conv(c(512), c(512)),
            _conv(c(512), c(512), 2), _conv(c(512), c(512)),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.global_fc = nn.Sequential(  # -> the 512-d feature the class head reads
            nn.Linear(c(512), c(1024)), nn.ReLU(inplace=True),
            nn.Linear(c(1024), c(512)), nn.ReLU(inplace=True),
        )
        self.global_out = nn.Sequential(nn.Linear(c(512), c(256)), nn.ReLU(inplace=True))
        self.fusion = _conv(c(256) + c(256), c(256), kernel=1)
        self.colorize = nn.Sequential(
            _conv(c(256), c(128)), nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(c(128), c(64)), _conv(c(64), c(64)), nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(c(64), c(32)),
            nn.Conv2d(c(32), out_channels, 3, padding=1),  # raw outputs at 1/2 of the input
        )
        if num_classes:
            self.classifier = nn.Sequential(
                nn.Linear(c(512), c(256)), nn.ReLU(inplace=True), nn.Linear(c(256), num_classes))

    def _features(self, x):
        low = self.low(x)
        mid = self.mid(low)
        g512 = self.global_fc(self.global_conv(low))
        g = self.global_out(g512)[:, :, None, None].expand(-1, -1, *mid.shape[-2:])
        out = self.colorize(self.fusion(torch.cat([mid, g], dim=1)))
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out, g512

    def forward(self, x):
        return self._features(x)[0]

    def forward_with_classes(self, x):
        """(raw colour outputs (B, out_channels, H, W), class logits (B, num_classes))."""
        if not self.num_classes:
            raise RuntimeError("this iizuka network was built with num_classes=0: it has no classification head")
        out, g512 = self._features(x)
        return out, self.classifier(g512)
