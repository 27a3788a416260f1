"""U-Net of seed 004 (Tsvetkov, Walhout, Wang, "DeepColor: Enhancing Image Colorization").

The seed: four encoder blocks (convolution, BatchNorm, LeakyReLU with slope 0.01), three decoder
blocks (transposed convolution, skip connection, BatchNorm, dropout 0.5, ReLU) and a final
transposed convolution with a sigmoid, trained from scratch with MSE.

What was adapted and why:
- Each encoder block halves the resolution with a stride-2 convolution (the seed's Keras code was
  not published; this is the usual pix2pix-style reading), so inputs must be a multiple of 16
  (`size_multiple`); `chromalab colorize` pads any photo to that multiple and crops back.
- The network ends with a plain convolution: the output activation belongs to the colour
  representation (the `ab` representation's tanh is the seed's sigmoid on a symmetric range), so the
  same U-Net can also predict RGB, palette classes or Zhang's bins.
- A 3x3 convolution refines each decoder block (the seed's blocks are a single transposed
  convolution); `base_channels` sets the width (the seed's widths are not given; 64 is the pix2pix
  width, the default profile uses less to stay fast on a CPU).
- `out_kernel` is the last convolution's size: 3 for the seed's 2 ab channels; 1 for a
  classification representation (Zhang's 313 bins), where a 3x3 layer of hundreds of channels at
  full resolution would cost 9 times as much and the decoder's 3x3 convolutions already see the
  neighbourhood.
"""

import torch
from torch import nn

from chromalab.models.registry import register_model


class _Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.01, inplace=True),
        )

    def forward(self, x):
        return self.block(x)


class _Up(nn.Module):
    def __init__(self, cin, cskip, cout, dropout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)
        self.block = nn.Sequential(
            nn.BatchNorm2d(cout + cskip),
            nn.Dropout2d(dropout) if dropout else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout + cskip, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x, skip):
        return self.block(torch.cat([self.up(x), skip], dim=1))


@register_model("unet")
class UNet(nn.Module):
    size_multiple = 16

    def __init__(self, in_channels=1, out_channels=2, base_channels=32, dropout=0.5, out_kernel=3):
        super().__init__()
        if out_kernel not in (1, 3):
            raise ValueError(f"out_kernel must be 1 or 3, not {out_kernel!r}")
        c = base_channels
        self.down1 = _Down(in_channels, c)  # 1/2
        self.down2 = _Down(c, 2 * c)  # 1/4
        self.down3 = _Down(2 * c, 4 * c)  # 1/8
        self.down4 = _Down(4 * c, 8 * c)  # 1/16
        self.up3 = _Up(8 * c, 4 * c, 4 * c, dropout)  # 1/8
        self.up2 = _Up(4 * c, 2 * c, 2 * c, dropout)  # 1/4
        self.up1 = _Up(2 * c, c, c, dropout)  # 1/2
        # The seed's final transposed convolution, back to full size.
        self.up0 = nn.Sequential(nn.ConvTranspose2d(c, c, 4, stride=2, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(c + in_channels, out_channels, out_kernel, padding=out_kernel // 2)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        d4 = self.down4(d3)
        u = self.up0(self.up1(self.up2(self.up3(d4, d3), d2), d1))
        # The input L joins the last layer so edges in the output line up with edges in L.
        return self.out(torch.cat([u, x], dim=1))
