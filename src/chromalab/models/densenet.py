"""DenseNet encoder-decoder of seed 004 (Tsvetkov, Walhout, Wang, "DeepColor: Enhancing Image
Colorization", after Baldassarre et al.'s Deep Koalarization).

The seed: an ImageNet-pretrained DenseNet121 is the encoder; its output goes through 5 decoder
blocks, each an upsampling layer and a 2D convolution followed by an activation and BatchNorm; the
first four use ReLU, the last a sigmoid without BatchNorm. Adam (lr 1e-4), MSE, 256x256 images.

What was adapted and why:
- The encoder is timm's `densenet121` as a feature extractor (features_only, last stage: 1024
  channels at 1/32 of the input, after the final norm5 + ReLU), so inputs must be a multiple of 32
  (`size_multiple`); `chromalab colorize` pads any photo to that multiple and crops back. Five x2
  upsamplings (nearest, Keras' UpSampling2D) bring it back to the input size; should an encoder of
  another stride be chosen, the output is resized to the input (bilinear).
- The grey input is fed to the encoder as three equal channels (L/100 in [0, 1]) with the
  normalisation the encoder's weights were trained with (ImageNet mean and std for densenet121).
- `pretrained`: false (random init, the default: no wheel ships DenseNet121's ImageNet weights, so
  offline it trains from scratch and the report says so), "hub" (timm's ImageNet weights,
  downloaded; the seed's setting) or the path of a local weights file
  (a timm or torchvision densenet121 state_dict). `freeze_encoder` freezes the encoder (weights and
  BatchNorm statistics; the seed fine-tuned it, it is false by default).
- The last block's convolution outputs the representation's channels raw: the output activation
  belongs to the colour representation (`ab` with `activation: sigmoid` is the seed's sigmoid).
- The seed gives no decoder widths: `decoder_channels` (default 256) is the first block's width,
  halved per block (256, 128, 64, 32), never below 16; 3x3 convolutions.
- `encoder` names another timm network (e.g. "densenet169"); its last stage feeds the decoder.

Size (measured; two output channels): 9,702,242 parameters with the defaults, 6,953,856 of them in
the encoder (densenet121's classifier is not part of it); decoder_channels 64: 7,569,698. On a CPU
densenet121 is the expensive part whatever the decoder (docs/benchmarks.md measures it): it is the
seed's model, not a light one; freeze_encoder with pre-trained weights leaves 615,842 trained
parameters at decoder_channels 64.
"""

from torch import nn

from chromalab.models.pretrained import TimmEncoderDecoder
from chromalab.models.registry import register_model


@register_model("densenet")
class DenseNetColorizer(TimmEncoderDecoder):
    owner, blocks = "densenet", 4

    def __init__(self, in_channels=1, out_channels=2, encoder="densenet121", pretrained=False,
                 decoder_channels=256, freeze_encoder=False):
        super().__init__(in_channels, out_channels, encoder, pretrained, decoder_channels, freeze_encoder)

    def build_decoder(self, channels, widths, out_channels):
        blocks, cin = [], channels
        for w in widths:  # the seed's first four blocks: upsample, conv, ReLU, BatchNorm
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, w, 3, padding=1),
                       nn.ReLU(inplace=True), nn.BatchNorm2d(w)]
            cin = w
        # The fifth: upsample and a convolution to the representation's channels, raw.
        blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, out_channels, 3, padding=1)]
        return nn.Sequential(*blocks)
